import FuzzSupport
import Foundation
import Testing
@testable import ImageIO

/// PNG bytes from a hostile file (a recalled PNG, an init image, a thumbnail) through the decoder and the text-chunk
/// reader: 10,000 seeded mutations of valid PNGs (ours with tEXt and iTXt, Pillow's RGBA and palette files) never
/// crash, every case is fast, and what decodes is consistent.
@Suite struct PNGChunkFuzzTests {
    static func corpus() throws -> [[UInt8]] {
        let image = RGBImage(width: 4, height: 3, pixels: (0..<36).map { UInt8($0 * 7) })
        let ours = try PNGFile.encode(image, text: [("parameters", "a cat\nNegative prompt: dog\nSteps: 28, Seed: 7, Size: 4x3"),
                                                    ("sd3-studio", #"{"prompt":"ein Bär 🐻","seed":7}"#), ("comment", "Latin-1 é")])
        let plain = try PNGFile.encode(RGBImage(width: 1, height: 1, pixels: [1, 2, 3]))
        let fixtures = try ["rgba.png", "palette.png"].map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: ImageIOTests.fixtures + "/" + $0))) }
        return [ours, plain] + fixtures
    }

    @Test func mutatedPNGsNeverCrashAndStayFast() throws {
        let corpus = try Self.corpus()
        for bytes in corpus { #expect((try? PNGFile.decode(bytes)) != nil, "the corpus itself must decode") }
        var decoded = 0, inconsistent = 0
        let slowest = Fuzz.run(corpus: corpus, seed: 0x504E_4701) { bytes in
            _ = PNGFile.textChunks(bytes)
            if let result = try? PNGFile.decode(bytes) {
                decoded += 1
                let image = result.image
                if image.width < 1 || image.height < 1 || image.pixels.count != image.width * image.height * 3 { inconsistent += 1 }
            }
        }
        #expect(inconsistent == 0)
        #expect(decoded > 0, "some mutations must still decode, or the corpus is not reaching the decoder")
        #expect(slowest.seconds < Fuzz.hangGuard, "slowest case \(slowest.seconds) s, \(slowest.input.count) bytes: \(slowest.input.prefix(64))")
    }

    /// A header claiming a huge image (with a correct CRC) is refused before any pixel buffer is allocated.
    @Test func aHugeDeclaredSizeIsRefusedUpFront() throws {
        var bytes = try PNGFile.encode(RGBImage(width: 1, height: 1, pixels: [1, 2, 3]))
        // IHDR data starts at 16: width, height (big-endian), then the chunk's CRC over type + data at 29.
        let huge: [UInt8] = [0x00, 0x01, 0x86, 0xA0]  // 100,000
        bytes.replaceSubrange(16..<20, with: huge)
        bytes.replaceSubrange(20..<24, with: huge)
        withUnsafeBytes(of: PNGFile.crc32(Array(bytes[12..<29])).bigEndian) { bytes.replaceSubrange(29..<33, with: $0) }
        let seconds = Fuzz.cpuSeconds { #expect(throws: PNGFile.Error.self) { try PNGFile.decode(bytes, name: "huge.png") } }.1
        #expect(seconds < Fuzz.hangGuard)
    }

    /// A text chunk whose declared length runs past the end, or a zero-length iTXt, ends the walk without a trap.
    @Test func truncatedAndEmptyChunksEndTheWalk() throws {
        let good = try PNGFile.encode(RGBImage(width: 1, height: 1, pixels: [1, 2, 3]), text: [("parameters", "Steps: 1, Seed: 2, Size: 1x1")])
        #expect(PNGFile.textChunks(good).map(\.key) == ["parameters"])
        for cut in 9..<good.count { _ = PNGFile.textChunks(Array(good.prefix(cut))) }
        let empty = Array(good.prefix(33)) + PNGFile.chunk("iTXt", []) + PNGFile.chunk("iTXt", [0x6B, 0]) + PNGFile.chunk("tEXt", [0x6B])
        #expect(PNGFile.textChunks(empty).isEmpty)
    }
}
