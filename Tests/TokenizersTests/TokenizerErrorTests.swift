import Testing
@testable import Tokenizers

@Suite struct TokenizerErrorTests {
    @Test func messagesNameTheFile() {
        #expect(TokenizerError.missingFile(path: "/m/tokenizer/vocab.json").description == "/m/tokenizer/vocab.json: missing tokenizer file")
        #expect(TokenizerError.wrongKind(path: "/m/tokenizer_3", expected: "CLIP", found: "T5Tokenizer").description.contains("expected a CLIP tokenizer"))
    }
}
