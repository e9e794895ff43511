import Foundation
import ImageIO
@testable import ImageMetadata
import Testing

/// `RecalledParameters` on the sample PNGs of scripts/fixtures/foreign_pngs.py (one per foreign format, with the
/// values expected.json says a reader must find), on bad input, and on our own PNGs both ways round.
@Suite struct RecallTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/recall"
    static var expected: [String: [String: Any]] {
        let data = FileManager.default.contents(atPath: folder + "/expected.json") ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        return object?["files"] as? [String: [String: Any]] ?? [:]
    }

    static var formats: [String] { expected.filter { $0.value["error"] == nil }.keys.sorted() }
    static var unreadable: [String] { expected.filter { $0.value["error"] != nil }.keys.sorted() }

    @Test func fixturesArePresent() {
        #expect(Self.formats.count == 7, "\(Self.formats)")
    }

    @Test(arguments: formats)
    func foreignFormat(_ name: String) throws {
        let want = try #require(Self.expected[name])
        let got = try MetadataReader.read(Self.folder + "/" + name)
        #expect(got.source.rawValue == want["source"] as? String)
        #expect(got.prompt == want["prompt"] as? String)
        #expect(got.negativePrompt == want["negativePrompt"] as? String)
        #expect(got.steps == (want["steps"] as? NSNumber)?.intValue)
        #expect(got.guidanceScale == (want["guidanceScale"] as? NSNumber)?.doubleValue)
        #expect(got.seed == (want["seed"] as? NSNumber)?.uint64Value)
        #expect(got.width == (want["width"] as? NSNumber)?.intValue && got.height == (want["height"] as? NSNumber)?.intValue)
        #expect(got.sampler == want["sampler"] as? String)
        #expect(got.scheduler == want["scheduler"] as? String)
        #expect(got.shift == (want["shift"] as? NSNumber)?.doubleValue)
        #expect(got.model == want["model"] as? String)
        #expect(got.strength == (want["strength"] as? NSNumber)?.doubleValue)
        for (key, value) in want["extra"] as? [String: String] ?? [:] {
            #expect(got.extra.contains(.init(key, value)), "\(name): missing \(key): \(value) in \(got.extra)")
        }
        #expect(got.metadata == nil)
    }

    @Test(arguments: unreadable)
    func pngWithoutParametersIsAClearError(_ name: String) throws {
        let path = Self.folder + "/" + name
        let message = try #require(Self.expected[name]?["error"] as? String)
        #expect(throws: MetadataError("\(path): \(message)")) { try MetadataReader.read(path) }
    }

    @Test func badFilesAreClearErrors() {
        #expect(throws: MetadataError("\(Self.folder)/not-a-png.png: not a PNG file")) { try MetadataReader.read(Self.folder + "/not-a-png.png") }
        #expect(throws: MetadataError("/no/such.png: no such file")) { try MetadataReader.read("/no/such.png") }
        #expect(throws: MetadataError("\(Self.folder): is a folder, not a PNG file")) { try MetadataReader.read(Self.folder) }
        let broken: [(key: String, value: String)] = [("prompt", "{not json")]
        #expect(throws: MetadataError("x.png: its ComfyUI prompt chunk is not a JSON object")) { try MetadataReader.parse(broken, name: "x.png") }
        #expect(throws: MetadataError.self) { try MetadataReader.parse([("parameters", "just a caption")], name: "x.png") }
    }

    /// Our PNG: the sd3-studio JSON gives back every field exactly; its A1111 text alone gives the same values.
    @Test func ownPNGRoundTrips() throws {
        var metadata = Support.metadata(seed: 18_446_744_073_709_551_615, prompt: "a red circle, 水彩\nsecond line")
        (metadata.negativePrompt, metadata.guidanceScale, metadata.shift, metadata.strength) = ("blur, dark", 4.5, 2.5, 0.35)
        (metadata.skipLayers, metadata.skipLayerScale) = ([7, 8, 9], 2.8)
        let path = Support.temporaryFolder() + "/ours.png"
        try PNGFile.write(Support.image, text: metadata.pngText, to: path)
        let recalled = try MetadataReader.read(path)
        #expect(recalled.source == .sd3Studio && recalled.metadata == metadata)
        #expect(recalled == RecalledParameters(metadata))

        let a1111 = try MetadataReader.parse([("parameters", metadata.a1111Parameters)], name: "ours.png")
        #expect(a1111.source == .sd3Studio && a1111.prompt == metadata.prompt && a1111.negativePrompt == metadata.negativePrompt)
        #expect(a1111.steps == metadata.steps && a1111.guidanceScale == 4.5 && a1111.seed == metadata.seed && a1111.shift == 2.5)
        #expect(a1111.width == 16 && a1111.height == 16 && a1111.strength == 0.35 && a1111.model == "tiny-sd3")
        #expect(a1111.extra.contains(.init("T5", "on, max 256")) && a1111.extra.contains(.init("Skip layers", "7, 8, 9")))
    }

    /// The UTF-8 repair is for stable-diffusion.cpp's tEXt only (it writes UTF-8 bytes there): valid Latin-1 from any
    /// other writer stays as written, and iTXt is never touched.
    @Test func latin1TextIsNotMistakenForUTF8() throws {
        #expect(A1111Reader.utf8Repaired("caf\u{C3}\u{A9}") == "café")
        #expect(A1111Reader.utf8Repaired("café") == "café")
        #expect(A1111Reader.utf8Repaired("水彩") == "水彩")
        let settings = "Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
        let a1111 = try A1111Reader.parse("literal \u{C3}\u{A9} here\n" + settings, latin1: true, name: "a.png")
        #expect(a1111.prompt == "literal Ã© here" && a1111.source == .a1111)
        let sdcpp = try A1111Reader.parse("caf\u{C3}\u{A9}\n" + settings + ", Version: stable-diffusion.cpp", latin1: true, name: "s.png")
        #expect(sdcpp.prompt == "café" && sdcpp.source == .stableDiffusionCpp)
        let international = try A1111Reader.parse("caf\u{C3}\u{A9}\n" + settings + ", Version: stable-diffusion.cpp", latin1: false, name: "s.png")
        #expect(international.prompt == "caf\u{C3}\u{A9}")
    }
}

/// tEXt and zTXt are Latin-1: every byte 0x01…0xFF comes back as the scalar of the same value.
@Test func latin1ChunksKeepEveryByte() throws {
    let bytes = [UInt8](1...255)
    var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    let data = Array("k".utf8) + [0] + bytes
    png += withUnsafeBytes(of: UInt32(data.count).bigEndian, Array.init) + Array("tEXt".utf8) + data + [0, 0, 0, 0]
    let chunk = try #require(PNGFile.textChunkList(png).first)
    #expect(chunk.latin1 && chunk.value.unicodeScalars.map(\.value) == bytes.map(UInt32.init))
}
