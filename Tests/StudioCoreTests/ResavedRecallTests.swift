import CZlib
import Foundation
@testable import ImageIO
import ImageMetadata
import Testing

/// A PNG of ours re-saved the way other tools do (Pillow's `add_text(..., zip=True)`: zTXt, or compressed iTXt when the
/// text is not Latin-1; some writers put the chunks after the image data): `sd3 recall` reads it and
/// `sd3 generate --params-from` makes the same pixels.
@Suite struct ResavedRecallTests {
    /// zlib's compress2 at level 9.
    static func deflate(_ bytes: [UInt8]) -> [UInt8] {
        var size = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in bytes.withUnsafeBufferPointer { compress2(o.baseAddress, &size, $0.baseAddress, uLong(bytes.count), 9) } }
        precondition(status == Z_OK)
        return Array(out.prefix(Int(size)))
    }

    /// `png` with every tEXt turned into zTXt and every iTXt compressed (PNG 1.2 §4.2.3), all moved after the last IDAT.
    static func compressedAfterImageData(_ png: [UInt8]) -> [UInt8] {
        var kept: [[UInt8]] = [], text: [[UInt8]] = []
        var offset = 8
        while offset + 12 <= png.count {
            let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8 | Int(png[offset + 3])
            let type = String(decoding: png[offset + 4..<offset + 8], as: UTF8.self)
            let data = Array(png[offset + 8..<offset + 8 + length])
            let nul = data.firstIndex(of: 0) ?? 0
            switch type {
            case "tEXt": text.append(PNGFile.chunk("zTXt", Array(data[...nul]) + [0] + deflate(Array(data[(nul + 1)...]))))
            case "iTXt":
                // keyword NUL, flag 0, method 0, "" NUL, "" NUL, text (as PNGFile writes it).
                text.append(PNGFile.chunk("iTXt", Array(data[...nul]) + [1, 0, 0, 0] + deflate(Array(data[(nul + 5)...]))))
            default: kept.append(Array(png[offset..<offset + 12 + length]))
            }
            offset += 12 + length
        }
        let lastIDAT = kept.lastIndex { $0[4..<8].elementsEqual("IDAT".utf8) } ?? kept.count - 1
        return Array(png.prefix(8)) + (kept[...lastIDAT] + text + kept[(lastIDAT + 1)...]).flatMap { $0 }
    }

    @Test(.timeLimit(.minutes(10)))
    func aCompressedResaveRecallsAndReproducesThePixels() throws {
        let folder = Support.temporaryFolder()
        let environment = ["XDG_CONFIG_HOME": folder + "/config", "XDG_DATA_HOME": folder + "/data"]
        let made = run(TmuxStudio.sd3, ["generate", "--model", Support.tinyModel, "-p", "a red circle, 水彩 🎨", "-n", "blur: \"x\"", "-W", "16", "-H", "16",
                                        "--steps", "3", "--seed", "11", "--threads", "1", "-o", folder + "/a.png"], environment: environment)
        #expect(made.status == 0, "\(made.output)")
        let original = try #require(FileManager.default.contents(atPath: folder + "/a.png")).map { $0 }
        let resaved = Self.compressedAfterImageData(original)
        #expect(PNGFile.textChunkList(resaved).map(\.key) == ["parameters", "sd3-studio"])
        try Data(resaved).write(to: URL(fileURLWithPath: folder + "/resaved.png"))
        #expect(try MetadataReader.read(folder + "/resaved.png") == MetadataReader.read(folder + "/a.png"))
        let recall = run(TmuxStudio.sd3, ["recall", folder + "/resaved.png"], environment: environment)
        #expect(recall.status == 0 && recall.output.contains("Prompt: a red circle, 水彩 🎨") && recall.output.contains("Seed: 11"), "\(recall.output)")
        // A record naming a model that is not here says so.
        var moved = try #require(MetadataReader.read(folder + "/a.png").metadata)
        moved.modelPath = "/nowhere/tiny-sd3"
        try PNGFile.write(Support.image, text: moved.pngText, to: folder + "/moved.png")
        let elsewhere = run(TmuxStudio.sd3, ["recall", folder + "/moved.png"], environment: environment)
        #expect(elsewhere.status == 0 && elsewhere.output.contains("Warning: model /nowhere/tiny-sd3 not found on this machine"), "\(elsewhere.output)")
        let again = run(TmuxStudio.sd3, ["generate", "--params-from", folder + "/resaved.png", "--threads", "1", "-o", folder + "/b.png"], environment: environment)
        #expect(again.status == 0, "\(again.output)")
        #expect(try PNGFile.read(folder + "/b.png").image == PNGFile.read(folder + "/a.png").image, "--params-from of the re-save made other pixels")
    }
}
