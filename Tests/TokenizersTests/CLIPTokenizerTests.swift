import Foundation
import Testing
@testable import Tokenizers

/// CLIP ids against transformers 5.24 for every fixture prompt (scripts/fixtures/tokenizer_ids.py).
@Suite struct CLIPTokenizerTests {
    static let configurations = ["clip", "clip-g", "clip-legacy"]

    @Test(arguments: configurations)
    func pipelineIdsMatchTransformers(_ configuration: String) throws {
        let tokenizer = try CLIPTokenizer(folder: Fixtures.clipFolder(configuration))
        try checkPipelineIds(configuration, padId: tokenizer.padTokenId, encode: tokenizer.encode,
                             encodeForPipeline: tokenizer.encodeForPipeline, minimumWarnings: 30)
    }

    @Test func publicTestVectors() throws {
        let clip = Fixtures.clip
        #expect(clip.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(clip.encode("Hello, world!") == [49406, 3306, 267, 1002, 256, 49407])
        #expect(clip.encode("A PHOTO of  a Cat!") == [49406, 320, 1125, 539, 320, 2368, 256, 49407])
        #expect(clip.encode("") == [49406, 49407])
        #expect(clip.bosTokenId == 49406 && clip.eosTokenId == 49407 && clip.padTokenId == 49407)
        #expect(clip.vocabularySize == 49408)
        #expect(clip.modelMaxLength == 77)
    }

    /// SD3's tokenizer_2 pads with "!", an added token, so a typed "!" is id 0 and never merges (diffusers #4153).
    @Test func exclamationMarkIsThePadTokenInClipG() throws {
        let clipG = try CLIPTokenizer(folder: Fixtures.clipFolder("clip-g"))
        #expect(clipG.padToken == "!")
        #expect(clipG.padTokenId == 0)
        #expect(clipG.encode("! !! !!!") == [49406, 0, 0, 0, 0, 0, 0, 49407])
        #expect(Fixtures.clip.encode("! !! !!!") == [49406, 256, 748, 995, 49407])
        let padded = clipG.encodeForPipeline("a cat").ids
        #expect(padded.count == 77 && padded[0...3] == [49406, 320, 2368, 49407] && padded[4...].allSatisfy { $0 == 0 })
    }

    @Test func truncationKeepsTheEndTokenLast() {
        let text = Array(repeating: "cat", count: 100).joined(separator: " ")
        let encoding = Fixtures.clip.encodeForPipeline(text)
        #expect(encoding.ids.count == 77)
        #expect(encoding.ids.first == 49406 && encoding.ids.last == 49407)
        #expect(encoding.untruncatedIds.count == 102)
        #expect(encoding.removedText == Array(repeating: "cat", count: 25).joined(separator: " "))
        #expect(Fixtures.clip.encodeForPipeline("a cat").removedText == nil)
    }

    @Test func decodeJoinsWordsAndStrips() {
        let clip = Fixtures.clip
        #expect(clip.decode(clip.encode("A photo of a CAT, 4k!")) == "<|startoftext|>a photo of a cat , 4 k ! <|endoftext|>")
        #expect(clip.decode([]) == "")
        #expect(clip.decode([320, 99_999, -1, 2368]) == "a cat")
    }

    /// Words are cached after their first BPE; a cached word gives the ids a fresh merge gives.
    @Test func bytePairCacheHoldsWordsAndAgreesWithFreshMerges() throws {
        let tokenizer = try CLIPTokenizer(folder: Fixtures.clipFolder("clip"))
        let bpe = tokenizer.bpe
        #expect(bpe.cachedWordCount == 0)
        let text = "an astronaut riding a horse, astronaut astronaut"
        let first = tokenizer.encode(text)
        #expect(bpe.cachedWordCount == 6)  // an, astronaut, riding, a, horse, ","
        #expect(tokenizer.encode(text) == first)
        let words = CLIPPreTokenizer.words(CLIPPreTokenizer.normalize(text))
        #expect(words.count == 8)
        #expect(bpe.cachedWordCount == Set(words).count)
        for word in words { #expect(bpe.encode(word: word) == bpe.merge(word: word)) }
        let long = Array(repeating: UInt8(ascii: "z"), count: BytePairEncoding.cacheMaximumWordLength)
        let before = bpe.cachedWordCount
        _ = bpe.encode(word: long)
        #expect(bpe.cachedWordCount == before, "words of 256 bytes or more are not cached")
    }

    /// BPE applies the lowest-ranked merge first, leftmost among equals: "aaa" is "aa" + "a</w>", not "a" + "aa</w>".
    @Test func mergesApplyLeftmostLowestRankFirst() throws {
        let folder = Fixtures.scratchFolder("tiny-clip")
        let vocab = ["a": 0, "a</w>": 1, "aa": 2, "aa</w>": 3, "aaa</w>": 4, "<|startoftext|>": 5, "<|endoftext|>": 6]
        try JSONSerialization.data(withJSONObject: vocab).write(to: folder.appendingPathComponent("vocab.json"))
        try "#version: 0.2\na a\na a</w>\naa a</w>\n".write(to: folder.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        let tokenizer = try CLIPTokenizer(folder: folder)
        #expect(tokenizer.encode("aaa") == [5, 4, 6])
        #expect(tokenizer.encode("aaaa") == [5, 2, 3, 6])
        #expect(tokenizer.encode("b") == [5, 6, 6], "unknown bytes become the unknown token <|endoftext|>")
    }
}
