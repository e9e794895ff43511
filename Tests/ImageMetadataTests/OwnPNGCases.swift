import Foundation
import ImageIO
import ImageMetadata

/// Our PNGs as `sd3 generate` writes them, one per case the other tools must read right (docs/testing.md): plain, an
/// empty prompt, quotes, colons, newlines, CJK and emoji, LoRAs (with an empty prompt too), a variation seed, img2img.
/// Fixtures/metadata/ours/ holds them (OwnPNGTests checks they are what the writer writes now; SD3_WRITE_OWN_PNGS=1
/// rewrites them), and scripts/fixtures/metadata_readers.py records what sd-parsers and sd-prompt-reader read from
/// them and from Pillow's re-saves of them.
enum OwnPNGCases {
    static let folder = Support.packageRoot + "/Tests/ImageMetadataTests/Fixtures/metadata/ours"

    static func base(_ prompt: String, negative: String = "blurry, lowres", seed: UInt64 = 1_234_567_890) -> ImageMetadata {
        var m = ImageMetadata(prompt: prompt, negativePrompt: negative, width: 16, height: 24, steps: 28, guidanceScale: 4.5, seed: seed,
                              maxSequenceLength: 256, t5: true, shift: 3, precision: "bf16", model: "sd3.5_medium", version: "sd3-studio 0.1.0")
        (m.modelPath, m.seconds) = ("/models/sd3.5_medium", 12.5)
        return m
    }

    static let all: [(name: String, metadata: ImageMetadata)] = {
        var tricky = base("say \"hi\": yes, no (watercolor:1.2)\nsecond line 水彩 🎨, Steps: 3", negative: "a: b, \"c\"\nd 雪 ❄️")
        tricky.guidanceScale = 0.1 + 0.2  // 0.30000000000000004: written shortest round-trip, read back the same double
        tricky.shift = 0.8700000000000001
        var loras = base("a cat on a mat")
        loras.loras = [.init(name: "style-a", strength: 0.8, hash: "a1b2c3d4e5f6", path: "/loras/style-a.safetensors"),
                       .init(name: "detail_v2", strength: 1.25, hash: "0123456789ab", path: "/loras/detail_v2.safetensors")]
        loras.loraMode = "merged"
        var lorasEmpty = base("", negative: "")
        lorasEmpty.loras = [.init(name: "style-a", strength: 0.5, hash: "a1b2c3d4e5f6")]
        lorasEmpty.loraMode = "run-time"
        var variation = base("a lighthouse at dusk", seed: 18_446_744_073_709_551_615)
        (variation.variationSeed, variation.variationStrength) = (987_654_321, 0.25)
        var img2img = base("a watercolor of the same scene")
        (img2img.strength, img2img.initImageHash) = (0.6, String(repeating: "ab", count: 32))
        return [("plain", base("a red circle on a white background")), ("empty-prompt", base("", negative: "")),
                ("empty-prompt-negative", base("", negative: "blurry")), ("tricky", tricky), ("loras", loras),
                ("loras-empty-prompt", lorasEmpty), ("variation", variation), ("img2img", img2img)]
    }()

    /// A 16×24 gradient.
    static let image: RGBImage = {
        var pixels: [UInt8] = []
        for y in 0..<24 { for x in 0..<16 { pixels += [UInt8(x * 16), UInt8(y * 10), 128] } }
        return RGBImage(width: 16, height: 24, pixels: pixels)
    }()
}
