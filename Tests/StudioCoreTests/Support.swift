import Foundation
import ImageIO
import SD3
@testable import StudioCore
import Testing

enum Support {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let tinyModel = packageRoot + "/Tests/SD3Tests/Fixtures/tiny-sd3"

    static func state(prompt: String = "") -> StudioState {
        var state = StudioState(model: "/models/tiny-sd3", randomSeed: 42)
        state.set(.prompt, prompt)
        return state
    }

    /// A 16×16 gradient, for previews.
    static let image: RGBImage = {
        var pixels: [UInt8] = []
        for y in 0..<16 { for x in 0..<16 { pixels += [UInt8(x * 16), UInt8(y * 16), 128] } }
        return RGBImage(width: 16, height: 16, pixels: pixels)
    }()

    static func metadata(seed: UInt64 = 7, prompt: String = "a red circle") -> ImageMetadata {
        var p = GenerationParameters(prompt: prompt)
        (p.width, p.height, p.steps, p.seed) = (16, 16, 3, seed)
        return ImageMetadata(parameters: p, model: "/models/tiny-sd3", t5: true, shift: 3, precision: "fp32", seconds: 1.5)
    }

    static func temporaryFolder() -> String {
        let path = NSTemporaryDirectory() + "studio-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
