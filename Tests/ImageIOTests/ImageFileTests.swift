import Foundation
@testable import ImageIO
import Testing

/// A user's picture by its bytes (ImageFile): PNG and JPEG decode as their own readers decode them, whatever the
/// name says; anything else, and a FIFO, is a one-line error naming the file.
@Suite struct ImageFileTests {
    static let folder = ImageIOTests.fixtures + "/orientation"

    @Test func pngAndJPEGByContent() throws {
        for name in ["o6.png", "o3.jpg", "portrait6.jpg"] {
            let path = Self.folder + "/" + name
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let expected = name.hasSuffix(".png") ? try PNGFile.decode(bytes, upright: true).image : try JPEGFile.decode(bytes, upright: true)
            #expect(try ImageFile.read(path, upright: true) == expected, "\(name)")
            // Pillow's upright pixels (ExifOrientationTests holds the readers to them).
            #expect(try ImageFile.read(path, upright: true) == PNGFile.read(path + ".png").image, "\(name)")
            #expect(try ImageFile.read(path) == (name.hasSuffix(".png") ? try PNGFile.decode(bytes).image : try JPEGFile.decode(bytes)))
        }
        // Misnamed files are read as what they are.
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("imagefile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        try FileManager.default.copyItem(atPath: Self.folder + "/o6.png", toPath: temporary + "/png.jpg")
        try FileManager.default.copyItem(atPath: Self.folder + "/o3.jpg", toPath: temporary + "/jpeg.png")
        #expect(try ImageFile.read(temporary + "/png.jpg", upright: true) == PNGFile.read(Self.folder + "/o6.png", upright: true).image)
        #expect(try ImageFile.read(temporary + "/jpeg.png", upright: true) == ImageFile.read(Self.folder + "/o3.jpg", upright: true))
    }

    @Test func anythingElseIsNamed() throws {
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("imagefile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let gif = temporary + "/a.gif"
        try Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8).write(to: URL(fileURLWithPath: gif))
        #expect(throws: ImageFile.Error(description: "\(gif): not a PNG or JPEG file")) { try ImageFile.read(gif) }
        #expect(throws: ImageFile.Error(description: "\(temporary): is a folder, not a PNG or JPEG file")) { try ImageFile.read(temporary) }
        let fifo = temporary + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: ImageFile.Error(description: "\(fifo): is a FIFO, not a PNG or JPEG file")) { try ImageFile.read(fifo) }
        // A JPEG cut short and a PNG cut short say which reader gave up, on one line.
        let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/o3.jpg")))
        for cut in [4, 40, jpeg.count / 2] {
            do { _ = try ImageFile.decode(Array(jpeg.prefix(cut)), name: "cut.jpg"); Issue.record("a JPEG cut at \(cut) decoded") } catch {
                #expect(error.description.hasPrefix("cut.jpg: ") && !error.description.contains("\n"), "\(error.description)")
            }
        }
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/o6.png")))
        #expect(throws: ImageFile.Error.self) { try ImageFile.decode(Array(png.prefix(png.count / 2)), name: "cut.png") }
    }
}
