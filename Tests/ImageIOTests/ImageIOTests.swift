import Foundation
import SafeTensors
import Testing
@testable import ImageIO

@Suite struct ImageIOTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path

    static func image(_ file: SafeTensorsFile, _ name: String) throws -> RGBImage {
        let info = try #require(file.info(name))
        return RGBImage(width: info.shape[1], height: info.shape[0], pixels: Array(file.bytes(info)))
    }

    /// Pillow's LANCZOS resize, byte for byte (scripts/fixtures/images.py), up, down, one axis, and to 1×1.
    @Test func lanczosMatchesPillow() throws {
        let file = try SafeTensorsFile(path: Self.fixtures + "/resize.safetensors")
        let source = try Self.image(file, "source")
        let sizes = try JSONSerialization.jsonObject(with: Data(file.metadata["sizes"]!.utf8)) as! [[Int]]
        for size in sizes {
            let expected = try Self.image(file, "\(size[0])x\(size[1])")
            let actual = LanczosResize.resize(source, width: size[0], height: size[1])
            let differing = zip(actual.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(differing == 0, "\(size): \(differing) of \(expected.pixels.count) bytes differ")
        }
    }

    @Test func pngRoundTripKeepsPixelsAndText() throws {
        let pixels = (0..<(7 * 5 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let image = RGBImage(width: 7, height: 5, pixels: pixels)
        let text = [("parameters", "a cat\nSteps: 28, Seed: 7"), ("sd3-studio", #"{"prompt":"ein Bär 🐻"}"#)]
        let bytes = try PNGFile.encode(image, text: text)
        let decoded = try PNGFile.decode(bytes)
        #expect(decoded.image == image)
        #expect(decoded.text.map(\.key) == text.map(\.0) && decoded.text.map(\.value) == text.map(\.1))
    }

    @Test func readsPillowPNGsInOtherModes() throws {
        let reference = try SafeTensorsFile(path: Self.fixtures + "/decoded.safetensors")
        let rgba = try PNGFile.read(Self.fixtures + "/rgba.png")
        #expect(rgba.image == (try Self.image(reference, "rgba_as_rgb")))
        #expect(rgba.text.first { $0.key == "parameters" }?.value == "a red circle\nSteps: 20, Seed: 42")
        #expect(rgba.text.first { $0.key == "comment" }?.value == "日本語のテキスト ✓")
        let palette = try PNGFile.read(Self.fixtures + "/palette.png")
        #expect(palette.image == (try Self.image(reference, "palette_as_rgb")))
    }

    @Test func brokenPNGsGiveErrors() throws {
        #expect(throws: PNGFile.Error.self) { try PNGFile.decode([1, 2, 3], name: "x.png") }
        let good = try PNGFile.encode(RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 9, count: 12)))
        #expect(throws: PNGFile.Error.self) { try PNGFile.decode(Array(good.prefix(40)), name: "cut.png") }
        #expect(throws: PNGFile.Error.self) { try PNGFile.read("/nonexistent/file.png") }
    }

    /// Latents with NaN or ±Inf (NaN weights, a huge guidance) preview as grey / white / black instead of trapping.
    @Test func latentPreviewOfNonFiniteValuesDoesNotTrap() {
        let latents: [Float] = [.nan, .infinity, -.infinity, 0.5]
        let image = LatentPreview.rgb(latents + latents + latents, channels: 3, width: 4, height: 1)
        #expect(image.pixels == [128, 128, 128, 255, 255, 255, 0, 0, 0, 191, 191, 191])
        let sixteen = LatentPreview.rgb([Float](repeating: .nan, count: 16), channels: 16, width: 1, height: 1)
        #expect(sixteen.pixels == [128, 128, 128])
    }

    @Test func crcMatchesTheStandardCheckValue() {
        #expect(PNGFile.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}

/// Text chunks as other tools write them: Pillow's `zip=True` (zTXt, compressed iTXt), after the image data, and a
/// zTXt that would inflate past the limit (scripts/fixtures/compressed_text.py).
@Suite struct CompressedTextTests {
    static func read(_ name: String) throws -> [(key: String, value: String)] {
        try PNGFile.read(ImageIOTests.fixtures + "/" + name).text
    }

    @Test(arguments: ["compressed-text.png", "compressed-text-after-idat.png"])
    func compressedChunksAreRead(_ name: String) throws {
        let text = try Self.read(name)
        #expect(text.map(\.key) == ["parameters", "sd3-studio"], "\(name): \(text)")
        #expect(text.first?.value == "a red circle\nSteps: 4, Seed: 42")
        #expect(text.last?.value == #"{"prompt":"水彩 ✓"}"#)
    }

    @Test func aChunkInflatingPastTheLimitIsSkipped() throws {
        let png = try PNGFile.read(ImageIOTests.fixtures + "/compressed-text-bomb.png")
        #expect(!png.text.contains { $0.key == "parameters" && $0.value.count > PNGFile.textLimit }, "the bomb was inflated")
        #expect(png.text.isEmpty && png.image.width == 3, "\(png.text.map(\.key))")
    }
}
