import Foundation
import Testing
@testable import Tokenizers

/// T5 ids against transformers 5.24 for every fixture prompt (scripts/fixtures/tokenizer_ids.py).
@Suite struct T5TokenizerTests {
    static let configurations = ["t5-77", "t5-256", "t5-512", "t5-no-extra-256", "t5-spiece-256", "t5-legacy-256"]

    @Test(arguments: configurations)
    func pipelineIdsMatchTransformers(_ configuration: String) throws {
        let tokenizer = try T5Tokenizer(folder: Fixtures.t5Folder(configuration))
        try checkPipelineIds(configuration, padId: tokenizer.padTokenId, encode: tokenizer.encode,
                             encodeForPipeline: tokenizer.encodeForPipeline, minimumWarnings: 1)
    }

    /// The Precompiled (nmt_nfkc) normalizer on every prompt, against tokenizers' `normalize_str`.
    @Test func normalizerMatchesTokenizers() throws {
        let fixture = Fixtures.prompts
        let charsmap = try #require(Fixtures.t5.charsmap)
        var mismatches = 0
        for (index, prompt) in fixture.prompts.enumerated() {
            let got = charsmap.normalize(prompt)
            let want = fixture.t5Normalized[index]
            if got.unicodeScalars.elementsEqual(want.unicodeScalars) { continue }
            mismatches += 1
            Issue.record("prompt \(index) \(prompt.debugDescription.prefix(200)): expected \(want.debugDescription.prefix(200)), got \(got.debugDescription.prefix(200))")
        }
        #expect(mismatches == 0)
    }

    @Test func sentinelsAndSpecialTokens() throws {
        let t5 = Fixtures.t5
        #expect(t5.eosTokenId == 1 && t5.padTokenId == 0 && t5.unknownTokenId == 2)
        let extra0 = t5.vocabularySize - 1  // <extra_id_0> is the last piece, <extra_id_99> the 100th from the end
        #expect(t5.encode("<extra_id_0>") == [extra0, 1])
        #expect(t5.encode("<extra_id_99>") == [extra0 - 99, 1])
        #expect(t5.encode("") == [1])
        #expect(t5.encode("</s>") == [1, 1])
        #expect(t5.encode("<pad>") == [0, 1])
        let noExtra = try T5Tokenizer(folder: Fixtures.t5Folder("t5-no-extra-256"))
        #expect(noExtra.vocabularySize == t5.vocabularySize - 100)
        #expect(noExtra.encode("<extra_id_0>").count > 2)
    }

    @Test func paddingAndTruncation() {
        let t5 = Fixtures.t5
        let short = t5.encodeForPipeline("a photo of a cat")
        #expect(short.ids.count == 256)
        #expect(short.ids.prefix(short.untruncatedIds.count).elementsEqual(short.untruncatedIds))
        #expect(short.ids.dropFirst(short.untruncatedIds.count).allSatisfy { $0 == 0 })
        #expect(short.removedText == nil)
        let long = t5.encodeForPipeline(Array(repeating: "a", count: 600).joined(separator: " "), maxLength: 512)
        #expect(long.ids.count == 512 && long.ids.last == 1 && !long.ids.contains(0))
        #expect(long.untruncatedIds.count == 601)
    }

    /// With `clean_up_tokenization_spaces` (as transformers-4 T5 configs set it) decode applies
    /// transformers' `clean_up_tokenization`.
    @Test func decodeCleansUpWhenTheConfigAsks() throws {
        var config = try JSONSerialization.jsonObject(with: Fixtures.data("t5/tokenizer_config.json")) as! [String: Any]
        config["clean_up_tokenization_spaces"] = true
        let folder = Fixtures.folder(copying: "t5", replacing: ["tokenizer_config.json": try JSONSerialization.data(withJSONObject: config)])
        let cleaning = try T5Tokenizer(folder: folder)
        let text = "a cat , a dog . the end ?"
        #expect(Fixtures.t5.decode(Array(Fixtures.t5.encode(text).dropLast())) == text)
        #expect(cleaning.decode(Array(cleaning.encode(text).dropLast())) == "a cat, a dog. the end?")
        #expect(T5Tokenizer.cleanUpTokenization("x ' y n't 'm 's 've 're !") == "x'yn't'm's've're!")
    }

    @Test func unigramFusesUnknownRuns() throws {
        let unigram = Fixtures.t5.unigram
        let space = try #require(unigram.id(of: Array("▁".utf8)))
        #expect(unigram.encode(Array("▁\u{10FFFD}\u{10FFFD}".utf8)) == [space, 2], "two unknown characters are one <unk>")
        #expect(unigram.encode(Array("▁\u{10FFFD}".utf8)) == [space, 2])
    }
}
