import Foundation
import ImageIO
import ImageMetadata

enum Support {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A 16×16 gradient.
    static let image: RGBImage = {
        var pixels: [UInt8] = []
        for y in 0..<16 { for x in 0..<16 { pixels += [UInt8(x * 16), UInt8(y * 16), 128] } }
        return RGBImage(width: 16, height: 16, pixels: pixels)
    }()

    /// A record as `sd3 generate` writes one for the tiny test model.
    static func metadata(seed: UInt64 = 7, prompt: String = "a red circle") -> ImageMetadata {
        var m = ImageMetadata(prompt: prompt, negativePrompt: "", width: 16, height: 16, steps: 3, guidanceScale: 7, seed: seed,
                              maxSequenceLength: 256, t5: true, shift: 3, precision: "fp32", model: "tiny-sd3", version: "sd3-studio 0.1.0")
        (m.modelPath, m.seconds) = ("/models/tiny-sd3", 1.5)
        return m
    }

    static func temporaryFolder() -> String {
        let path = NSTemporaryDirectory() + "metadata-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
