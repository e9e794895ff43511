import FuzzSupport
import Foundation
import Testing
@testable import ImageIO

/// EXIF orientation against Pillow's `ImageOps.exif_transpose` (scripts/fixtures/exif_orientation.py): the upright
/// pixels of every orientation, where the tag is found (EXIF in JPEG APP1 and PNG eXIf, big-endian, XMP, ImageMagick's
/// raw profile, eXIf after the pixels), Pillow's reading of hand-built and damaged IFDs, and hostile blocks.
@Suite struct ExifOrientationTests {
    static let folder = ImageIOTests.fixtures + "/orientation"

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))) }

    /// Pillow's upright pixels, stored as a PNG with no orientation left.
    static func truth(_ name: String) throws -> RGBImage { try PNGFile.decode(bytes(name + ".png")).image }

    @Test(arguments: (1...8).map { "o\($0).png" } + ["raw3.png", "late5.png"])
    func pngIsUprightAsPillow(_ name: String) throws {
        let file = try Self.bytes(name)
        let image = try PNGFile.decode(file, upright: true).image
        let expected = try Self.truth(name)
        #expect(image == expected, "\(name): \(image.width)×\(image.height), Pillow \(expected.width)×\(expected.height)")
        // Without `upright` the pixels stay as stored.
        let stored = try PNGFile.decode(file).image, asStored = try Self.truth("o1.png")
        #expect(stored == asStored)
    }

    /// JPEG: Pillow 13's libjpeg-turbo and Debian 12's decode these files (4:4:4 and portrait6's 4:2:0) to the same
    /// bytes (measured: no difference in any of them), so the upright pixels must be equal.
    @Test(arguments: (1...8).map { "o\($0).jpg" } + ["mm6.jpg", "xmp8.jpg", "portrait6.jpg"])
    func jpegIsUprightAsPillow(_ name: String) throws {
        let image = try JPEGFile.decode(Self.bytes(name), upright: true)
        let expected = try Self.truth(name)
        #expect(image.width == expected.width && image.height == expected.height)
        let largest = zip(image.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(largest == 0, "\(name): max difference \(largest) from Pillow's upright pixels")
        let stored = try JPEGFile.decode(Self.bytes(name))
        #expect((stored.width, stored.height) == (name.hasPrefix("portrait") ? (64, 40) : (5, 3)))
    }

    @Test func orientationIsFoundWherePillowFindsIt() throws {
        for n in 1...8 {
            #expect(ExifOrientation.ofJPEG(try Self.bytes("o\(n).jpg")) == n)
            #expect(ExifOrientation.ofPNG(try Self.bytes("o\(n).png")) == n)
        }
        #expect(ExifOrientation.ofJPEG(try Self.bytes("mm6.jpg")) == 6)
        #expect(ExifOrientation.ofJPEG(try Self.bytes("xmp8.jpg")) == 8)
        #expect(ExifOrientation.ofPNG(try Self.bytes("raw3.png")) == 3)
        #expect(ExifOrientation.ofPNG(try Self.bytes("late5.png")) == 5)
        // Our own PNGs and the other fixtures carry none.
        #expect(ExifOrientation.ofPNG(try PNGFile.encode(RGBImage(width: 1, height: 1, pixels: [1, 2, 3]))) == nil)
        #expect(ExifOrientation.ofJPEG(try [UInt8](Data(contentsOf: JPEGTests.folder.appendingPathComponent("preview.jpg")))) == nil)
    }

    /// Pillow's Exif reading of each block of tiff.json (types, counts, duplicates, out-of-line values, cut and
    /// damaged copies), as exif_transpose sees it.
    @Test func ifdsReadAsPillowReadsThem() throws {
        struct Case: Decodable { let exif: String; let orientation: Int? }
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: Self.folder + "/tiff.json")))
        #expect(cases.count > 600)
        var wrong: [String] = []
        for c in cases {
            let block = stride(from: 0, to: c.exif.count, by: 2).map { i -> UInt8 in
                let start = c.exif.index(c.exif.startIndex, offsetBy: i)
                return UInt8(c.exif[start..<c.exif.index(start, offsetBy: 2)], radix: 16)!
            }
            let found = ExifOrientation.orientation(exif: ExifOrientation.exifPrefix + block, xmp: nil)
            if found != c.orientation { wrong.append("\(c.exif): \(found.map(String.init) ?? "nil"), Pillow \(c.orientation.map(String.init) ?? "nil")") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(cases.count) differ, first: \(wrong.prefix(5))")
    }

    @Test func xmpPatternIsPillows() {
        func xmp(_ text: String) -> Int? { ExifOrientation.xmpOrientation(Array(text.utf8)[...]) }
        #expect(xmp(#"<rdf:Description tiff:Orientation="6"/>"#) == 6)
        #expect(xmp("<tiff:Orientation>3</tiff:Orientation>") == 3)
        #expect(xmp(#"tiff:Orientation="x" tiff:Orientation="7""#) == 7)
        #expect(xmp("tiff:Orientation='6'") == nil)
        #expect(xmp("tiff:Orientation=\"") == nil && xmp("tiff:Orientation") == nil && xmp("") == nil)
    }

    /// The EXIF block of o6.jpg cut at every byte: the tag is read exactly when its 12-byte entry is whole
    /// ("Exif\0\0", 8-byte TIFF header, 2-byte count, entry: 28 bytes), else none; never a read past the end.
    @Test func truncatedBlocksGiveNone() throws {
        let jpeg = try Self.bytes("o6.jpg")
        let start = try #require((0..<jpeg.count - 6).first { jpeg[$0..<$0 + 6].elementsEqual(ExifOrientation.exifPrefix) })
        let length = (Int(jpeg[start - 2]) << 8 | Int(jpeg[start - 1])) - 2
        let block = Array(jpeg[start..<start + length])
        #expect(ExifOrientation.tag(block[...]) == .present(6))
        for cut in 0...block.count {
            let found = ExifOrientation.orientation(exif: Array(block.prefix(cut)), xmp: nil)
            #expect(found == (cut >= 28 ? 6 : nil), "cut at \(cut)")
        }
        // The whole file cut anywhere: 6 once the APP1 segment is whole, never anything else.
        let segmentEnd = start + length
        for cut in 0...jpeg.count {
            #expect(ExifOrientation.ofJPEG(Array(jpeg.prefix(cut))) == (cut >= segmentEnd ? 6 : nil), "file cut at \(cut)")
        }
        let png = try Self.bytes("o6.png")
        for cut in 0...png.count { #expect([nil, 6].contains(ExifOrientation.ofPNG(Array(png.prefix(cut))))) }
    }

    /// IFD offsets past the end, huge entry and value counts with every type, offsets near 2³²: none, no crash.
    @Test func badOffsetsAndHugeCountsGiveNone() {
        func block(ifd: UInt32, count: UInt16, type: UInt16, values: UInt32, value: UInt32) -> [UInt8] {
            var b: [UInt8] = Array("II*\0".utf8)
            withUnsafeBytes(of: ifd.littleEndian) { b += $0 }
            withUnsafeBytes(of: count.littleEndian) { b += $0 }
            for (v, size) in [(UInt32(0x0112), 2), (UInt32(type), 2), (values, 4), (value, 4)] {
                withUnsafeBytes(of: v.littleEndian) { b += $0.prefix(size) }
            }
            return b + [0, 0, 0, 0]
        }
        #expect(ExifOrientation.tag(block(ifd: 8, count: 1, type: 3, values: 1, value: 6)[...]) == .present(6))
        for ifd: UInt32 in [0, 1, 7, 24, 25, 26, 0x7FFF_FFFF, 0xFFFF_FFF0, 0xFFFF_FFFF] {
            #expect(ExifOrientation.tag(block(ifd: ifd, count: 1, type: 3, values: 1, value: 6)[...]) == .absent, "IFD at \(ifd)")
        }
        #expect(ExifOrientation.tag(block(ifd: 8, count: 0xFFFF, type: 3, values: 1, value: 6)[...]) == .present(6))
        #expect(ExifOrientation.tag(block(ifd: 8, count: 0xFFFF, type: 3, values: 0, value: 6)[...]) == .absent)
        for type: UInt16 in 0...20 {
            for values: UInt32 in [3, 0x4000_0000, 0xFFFF_FFFF] {
                for value: UInt32 in [26, 0xFFFF_FFF0, 0xFFFF_FFFF] {
                    let tag = ExifOrientation.tag(block(ifd: 8, count: 1, type: type, values: values, value: value)[...])
                    // Only three values of a 1-byte type (BYTE, ASCII, SBYTE, UNDEFINED) fit in the entry; the rest
                    // point past the 26-byte block, and types 0, 14, 15 and above 16 are unknown.
                    let inline = values == 3 && [1, 2, 6, 7].contains(type)
                    #expect(inline ? tag != .absent : tag == .absent, "type \(type), \(values) values at \(value): \(tag)")
                }
            }
        }
    }

    /// Seeded mutations of the fixtures through both finders and the upright decoders: no crash, fast, and what
    /// decodes has the stored or the swapped size.
    @Test func mutatedFilesNeverCrash() throws {
        let corpus = try ["o6.jpg", "mm6.jpg", "xmp8.jpg", "o5.png", "raw3.png", "late5.png"].map(Self.bytes)
        var inconsistent = 0
        let slowest = Fuzz.run(corpus: corpus, seed: 0x4558_4946) { bytes in
            let orientation = PNGFile.isPNG(bytes) ? ExifOrientation.ofPNG(bytes) : ExifOrientation.ofJPEG(bytes)
            if let orientation, !(1...8).contains(orientation) { inconsistent += 1 }
            let image: RGBImage?
            if PNGFile.isPNG(bytes) { image = try? PNGFile.decode(bytes, upright: true).image } else { image = try? JPEGFile.decode(bytes, upright: true) }
            if let image, image.pixels.count != image.width * image.height * 3 { inconsistent += 1 }
        }
        #expect(inconsistent == 0)
        #expect(slowest.seconds < Fuzz.hangGuard, "slowest case \(slowest.seconds) s")
    }
}
