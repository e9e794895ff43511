import Foundation
import Inflate
import Testing
@testable import Tokenizers

/// The CLIP vocabulary shipped in the app (gzip, decoded with zlib) tokenizes exactly as the real
/// openai/clip-vit-large-patch14 vocab.json + merges.txt (Fixtures/clip) do, with SD3's padding.
@Suite struct BundledCLIPTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    @Test func matchesTheRealVocabulary() throws {
        let real = try CLIPTokenizer(folder: Self.fixtures.appendingPathComponent("clip"))
        let bundled = try CLIPTokenizer(bundledPaddingWith: "<|endoftext|>")
        #expect(bundled.vocabularySize == 49408 && bundled.bpe.vocab == real.bpe.vocab)
        let prompts = ["a photo of a cat", "Hello, world!", "A PHOTO of  a Cat!", "", "naïve café — 東京 🚀 x²",
                       "a red fox in the snow, oil painting, 4k, trending on artstation"]
        for prompt in prompts {
            #expect(bundled.encodeForPipeline(prompt).ids == real.encodeForPipeline(prompt).ids, "\(prompt)")
        }
        #expect(bundled.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368, 49407])
        // CLIP-G pads with "!" (id 0), and a typed "!" is that added token.
        let g = try CLIPTokenizer(bundledPaddingWith: "!")
        #expect(g.padTokenId == 0 && bundled.padTokenId == 49407)
        #expect(g.encodeForPipeline("hi!").ids.prefix(5) == [49406, 1883, 0, 49407, 0])
    }

    @Test func gzipRejectsDamagedStreams() {
        #expect(Inflate.decompress([0x1f, 0x8b, 0x08, 0, 0, 0], format: .gzip) == nil)
        #expect(Inflate.decompress(Array("plain".utf8), format: .gzip) == nil)
    }
}
