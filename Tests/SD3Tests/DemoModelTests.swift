import Foundation
import ImageIO
import Testing
@testable import SD3

/// The shipped demo model (models/sd3-demo) draws what held-out captions ask for, with our engine and the
/// model's defaults: background and shape colours checked against the dataset's palette
/// (scripts/demo-model/dataset.py PALETTE_RGB). The last caption has no position (the grammar allows that).
@Suite struct DemoModelTests {
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/sd3-demo").path
    static let palette: [String: (Double, Double, Double)] = [
        "red": (210, 25, 45), "orange": (250, 125, 10), "yellow": (245, 235, 60), "green": (40, 170, 60),
        "blue": (40, 80, 220), "purple": (140, 50, 180), "white": (245, 245, 245), "black": (25, 25, 25),
    ]

    static func nearest(_ rgb: (Double, Double, Double)) -> String {
        palette.min { a, b in
            let da = pow(a.value.0 - rgb.0, 2) + pow(a.value.1 - rgb.1, 2) + pow(a.value.2 - rgb.2, 2)
            let db = pow(b.value.0 - rgb.0, 2) + pow(b.value.1 - rgb.1, 2) + pow(b.value.2 - rgb.2, 2)
            return da < db
        }!.key
    }

    /// Background: the colour of the outer ring. Shape: the mean colour of pixels far from the background.
    static func colours(_ image: RGBImage) -> (background: String, shape: String) {
        var ring: [(Double, Double, Double)] = []
        for y in 0..<image.height { for x in 0..<image.width where x < 2 || y < 2 || x >= image.width - 2 || y >= image.height - 2 {
            let (r, g, b) = image[x, y]
            ring.append((Double(r), Double(g), Double(b)))
        } }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let background = (median(ring.map(\.0)), median(ring.map(\.1)), median(ring.map(\.2)))
        var far: [(Double, Double, Double)] = []
        for y in 0..<image.height { for x in 0..<image.width {
            let (r, g, b) = image[x, y]
            let p = (Double(r), Double(g), Double(b))
            if pow(p.0 - background.0, 2) + pow(p.1 - background.1, 2) + pow(p.2 - background.2, 2) > 80 * 80 { far.append(p) }
        } }
        guard !far.isEmpty else { return (nearest(background), "none") }
        let n = Double(far.count)
        return (nearest(background), nearest((far.map(\.0).reduce(0, +) / n, far.map(\.1).reduce(0, +) / n, far.map(\.2).reduce(0, +) / n)))
    }

    @Test(arguments: [(0, "a red circle at the top left on an orange background", "red", "orange"),
                      (2, "a yellow triangle at the bottom right on a green background", "yellow", "green"),
                      (5, "a purple heart at the top right on a white background", "purple", "white"),
                      (1, "a yellow triangle on a purple background", "yellow", "purple")])
    func heldOutCaptionsGetTheirColours(seed: Int, caption: String, shape: String, background: String) throws {
        let pipeline = try StableDiffusion3Pipeline(path: Self.model)
        let d = try ModelDefaults.read(model: Self.model)
        var p = GenerationParameters(prompt: caption)
        p.width = try #require(d.width)
        p.height = try #require(d.height)
        p.steps = try #require(d.steps)
        p.guidanceScale = try #require(d.guidanceScale)
        p.maxSequenceLength = try #require(d.maxSequenceLength)
        p.shift = d.shift
        p.seed = UInt64(seed)
        let image = try pipeline.generate(p)
        let found = Self.colours(image)
        #expect(found.background == background && found.shape == shape, "\(caption): found a \(found.shape) shape on \(found.background)")
    }

    @Test func demoModelIsFoundFromTheBuildFolder() {
        let executable = URL(fileURLWithPath: Self.model).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/x86_64-unknown-linux-gnu/release/sd3").path
        #expect(DemoModel.locate(executable: executable) == Self.model)
    }
}
