import Foundation
import ImageIO
import Testing
@testable import Training

/// A phone portrait (stored 64×40, EXIF orientation 6) in a data folder trains upright, as the script's
/// `exif_transpose` makes it: its prepared pixels are those of Pillow's upright copy (40×64, portrait6.jpg.png from
/// scripts/fixtures/exif_orientation.py) in a folder of its own.
@Suite struct TrainingOrientationTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path + "/orientation"

    static func example(_ name: String, folder: String) throws -> [Float] {
        let path = LoraOutputTests.folder(folder)
        try FileManager.default.copyItem(atPath: fixtures + "/" + name, toPath: path + "/" + name)
        return try #require(TrainingData(folder: path, resolution: 32, instancePrompt: "sks").examples.first).pixels
    }

    @Test func aRotatedPhotoLoadsUpright() throws {
        let rotated = try Self.example("portrait6.jpg", folder: "orientation-jpeg")
        let upright = try Self.example("portrait6.jpg.png", folder: "orientation-upright")
        #expect(rotated.count == 3 * 32 * 32 && upright.count == rotated.count)
        // Our JPEG decode of portrait6.jpg equals Pillow's (ExifOrientationTests), so the prepared pixels are equal.
        let largest = zip(rotated, upright).map { abs($0 - $1) }.max() ?? .infinity
        #expect(largest == 0, "max difference \(largest) from Pillow's upright copy")
        // The stored (sideways) pixels give another picture: the test can tell.
        let sideways = TrainingData.prepare(try JPEGFile.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/portrait6.jpg")))),
                                            resolution: 32)
        #expect((zip(sideways, upright).map { abs($0 - $1) }.max() ?? 0) > 0.2)
    }
}
