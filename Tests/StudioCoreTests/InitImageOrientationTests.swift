import Foundation
import ImageIO
import Testing

/// `sd3 generate --init-image` turns a photo upright by its EXIF orientation first, as diffusers' load_image does
/// (exif_transpose): o6.png (stored 5×3, orientation 6) gives the image that Pillow's upright copy of it gives, and
/// the stored pixels read as they lie (o1.png, orientation 1) give another.
@Suite struct InitImageOrientationTests {
    static let fixtures = Support.packageRoot + "/Tests/ImageIOTests/Fixtures/orientation"

    /// A fixture's name, or an absolute path.
    static func generated(from initImage: String) throws -> RGBImage {
        let folder = Support.temporaryFolder(), data = Support.temporaryFolder()
        // Four steps at strength 0.5: two run from the init image's latents (one step at 0.5 runs none).
        let arguments = ["generate", "-p", "a cat", "-W", "16", "-H", "16", "--steps", "4", "--seed", "7", "--threads", "1",
                         "--init-image", initImage.hasPrefix("/") ? initImage : fixtures + "/" + initImage, "--strength", "0.5", "-o", folder + "/out.png"]
        let outcome = HostileInputCommandLineTests.sd3(arguments, data: data, limit: 120)
        try #require(outcome.status == 0, "\(initImage): \(outcome.stderr)")
        return try PNGFile.read(folder + "/out.png").image
    }

    @Test(.timeLimit(.minutes(10))) func anOrientedInitImageIsUsedUpright() throws {
        let rotated = try Self.generated(from: "o6.png")
        let upright = try Self.generated(from: "o6.png.png")
        let asStored = try Self.generated(from: "o1.png")
        let (same, differs) = (rotated == upright, rotated != asStored)
        #expect(same, "o6.png and its upright copy give different images")
        #expect(differs, "the stored pixels give the same image: the init image has no effect the test can see")
    }

    /// A JPEG init image, as diffusers' load_image opens one: o6.jpg (orientation 6) gives the image that Pillow's
    /// upright decode of it (o6.jpg.png, exact pixels: ImageIOTests) gives; a PNG named .jpg is read as the PNG it is.
    @Test(.timeLimit(.minutes(10))) func aJPEGInitImageIsReadUpright() throws {
        let jpeg = try Self.generated(from: "o6.jpg")
        let pillow = try Self.generated(from: "o6.jpg.png")
        #expect(jpeg == pillow, "o6.jpg and Pillow's upright decode of it give different images")
        let folder = Support.temporaryFolder()
        try FileManager.default.copyItem(atPath: Self.fixtures + "/o6.png", toPath: folder + "/really-a-png.jpg")
        let misnamed = try Self.generated(from: folder + "/really-a-png.jpg")
        #expect(misnamed == (try Self.generated(from: "o6.png")), "a PNG named .jpg was not read as its content")
    }
}
