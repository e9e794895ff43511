import Foundation
import Testing
@testable import ImageIO

/// JPEGFile against Pillow's decode of the same files (scripts/fixtures/jpeg.py): libjpeg-turbo on both sides, so the
/// pixels agree to within the IDCT and upsampling differences between its versions.
@Suite struct JPEGTests {
    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("jpeg")

    @Test(arguments: ["preview", "subsampled", "progressive", "grey"])
    func decodesAsPillowDoes(_ name: String) throws {
        let bytes = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent("\(name).jpg")))
        let expected = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent("\(name).rgb")))
        let image = try JPEGFile.decode(bytes)
        #expect(image.width * image.height * 3 == expected.count)
        let differences = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }
        let largest = differences.max() ?? 0
        let mean = Double(differences.reduce(0, +)) / Double(max(differences.count, 1))
        #expect(largest <= 1 && mean < 0.05, "\(name): \(image.width)×\(image.height), max difference \(largest), mean \(mean)")
    }

    /// Every prefix of a valid JPEG, and flipped bytes, fail with one line or decode; none crashes or hangs.
    @Test func brokenJPEGsAreOneLineErrors() throws {
        let bytes = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent("preview.jpg")))
        for length in stride(from: 0, to: bytes.count, by: 37) {
            do {
                _ = try JPEGFile.decode(Array(bytes.prefix(length)), name: "cut")
            } catch {
                #expect(!error.description.contains("\n") && error.description.hasPrefix("cut: "))
            }
        }
        var flipped = bytes
        for i in stride(from: 2, to: flipped.count, by: 11) { flipped[i] ^= 0x5A }
        do { _ = try JPEGFile.decode(flipped) } catch { #expect(!error.description.contains("\n")) }
        #expect(throws: JPEGFile.Error(description: "JPEG: not a JPEG image")) { try JPEGFile.decode(Array("PNG".utf8)) }
    }

    /// Prefixes of preview.jpg as Pillow's load() takes them (truncated.json): where Pillow decodes, so do we; where it
    /// says the file is truncated we say so in one line (libjpeg would fill the rest with grey and carry on), and
    /// `partial`, for ComfyUI's step previews, takes what there is.
    @Test func truncatedAsPillowSays() throws {
        struct Outcome: Decodable { let length: Int; let pillow: String }
        let outcomes = try JSONDecoder().decode([Outcome].self, from: Data(contentsOf: Self.folder.appendingPathComponent("truncated.json")))
        let bytes = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent("preview.jpg")))
        #expect(outcomes.count == 6 && outcomes.last?.length == bytes.count)
        for outcome in outcomes {
            let prefix = Array(bytes.prefix(outcome.length))
            if outcome.pillow == "decoded" {
                #expect(try JPEGFile.decode(prefix).width == 56)
                continue
            }
            do {
                _ = try JPEGFile.decode(prefix, name: "cut")
                Issue.record("\(outcome.length) bytes decoded; Pillow: \(outcome.pillow)")
            } catch {
                #expect(error.description.hasPrefix("cut: ") && !error.description.contains("\n"), "\(error.description)")
                if outcome.pillow.hasPrefix("image file is truncated") {
                    #expect(error.description == "cut: truncated JPEG (the file ends inside its image data)", "\(outcome.length): \(error.description)")
                    #expect(try JPEGFile.decode(prefix, partial: true).width == 56)
                }
            }
        }
    }

    /// A file cut in its headers says so too, not libjpeg's reading of its fake end marker as header fields
    /// ("Bogus marker length", "Invalid progressive parameters Ss=217…").
    @Test func aCutInTheHeadersIsTruncated() throws {
        for name in ["preview", "progressive", "subsampled", "grey"] {
            let bytes = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent("\(name).jpg")))
            var said: Set<String> = []
            for length in 4..<bytes.count {
                do { _ = try JPEGFile.decode(Array(bytes.prefix(length)), name: "cut") } catch { said.insert(error.description) }
            }
            #expect(said.isSubset(of: ["cut: truncated JPEG (the file ends early)", "cut: truncated JPEG (the file ends inside its image data)"]),
                    "\(name): \(said.sorted())")
        }
    }

    /// libjpeg has no CMYK → RGB conversion (Pillow has one); such a file is refused by name.
    @Test func aCMYKJPEGIsRefusedByName() throws {
        let bytes = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent("cmyk.jpg")))
        #expect(throws: JPEGFile.Error(description: "cmyk.jpg: a CMYK JPEG, which is not supported: save it as RGB")) {
            try JPEGFile.decode(bytes, name: "cmyk.jpg")
        }
    }

    /// A header announcing a huge image is refused before any pixel buffer is made.
    @Test func aHugeHeaderIsRefused() throws {
        var bytes = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent("preview.jpg")))
        // SOF0 marker: FF C0, length (2), precision (1), height (2), width (2).
        let sof = try #require((0..<bytes.count - 1).first { bytes[$0] == 0xFF && (bytes[$0 + 1] == 0xC0 || bytes[$0 + 1] == 0xC2) })
        bytes[sof + 5] = 0xF0; bytes[sof + 6] = 0x00
        bytes[sof + 7] = 0xF0; bytes[sof + 8] = 0x00
        #expect {
            try JPEGFile.decode(bytes)
        } throws: { error in
            "\(error)".contains("61440x61440 pixels is more than")
        }
    }
}
