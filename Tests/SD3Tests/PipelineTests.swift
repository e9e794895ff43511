import Foundation
import ImageIO
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// End to end against diffusers 0.42.1 on the tiny pipeline (scripts/fixtures/pipeline.py): txt2img with and
/// without guidance, with skip-layer guidance, and img2img; final latents within 1e-4 and pixels ≥ 45 dB PSNR.
@Suite struct PipelineTests {
    static let fixtures = TransformerTests.fixtures
    static let reference = try! SafeTensorsFile(path: fixtures + "/pipeline.safetensors")

    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        var total = 0.0
        for (x, y) in zip(a, b) {
            let d = Double(Int(x) - Int(y))
            total += d * d
        }
        let mse = total / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func matchesDiffusers(backend: BackendKind) throws {
        var options = LoadOptions()
        options.backend = backend
        options.threads = 2
        let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: options)
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        let initImage = try PNGFile.read(Self.fixtures + "/init.png").image
        for (index, c) in cases.enumerated() {
            var p = GenerationParameters(prompt: c["prompt"] as! String)
            p.negativePrompt = c["negative_prompt"] as! String
            p.width = c["width"] as! Int
            p.height = c["height"] as! Int
            p.steps = c["steps"] as! Int
            p.guidanceScale = (c["guidance"] as! NSNumber).doubleValue
            p.seed = UInt64(c["seed"] as! String)!
            p.maxSequenceLength = c["max_sequence_length"] as! Int
            if let layers = c["skip_layers"] as? [Int] { p.skipLayerGuidance = SkipLayerGuidance(layers: layers) }
            if c["kind"] as! String == "img2img" {
                p.initImage = initImage
                p.strength = (c["strength"] as! NSNumber).doubleValue
            }
            try pipeline.validate(p)
            let conditioning = try pipeline.encode(p)
            let (scheduler, start, begin) = try pipeline.prepare(p)
            var steps = 0
            let latents = try Denoiser(transformer: pipeline.transformer, compute: pipeline.compute)
                .run(latents: start, conditioning: conditioning, scheduler: scheduler, beginIndex: begin, guidanceScale: p.guidanceScale,
                     skipLayerGuidance: p.skipLayerGuidance, isCancelled: { false }, onStep: { _ in steps += 1 })
            #expect(steps == p.steps - begin, "case \(index): \(steps) steps reported")
            let expected = try Self.reference.tensor("case\(index).latents")
            #expect(latents.shape == expected.shape)
            let worst = zip(latents.data, expected.data).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-4, "case \(index) (\(c["kind"]!)): latents max abs error \(worst)")
            let image = try pipeline.decode(latents)[0]
            let reference = try #require(Self.reference.info("case\(index).image"))
            let pixels = Array(Self.reference.bytes(reference))
            #expect(image.width == reference.shape[1] && image.height == reference.shape[0])
            let quality = Self.psnr(image.pixels, pixels)
            #expect(quality >= 45, "case \(index): PSNR \(quality) dB")
        }
    }

    @Test func badParametersAreNamed() throws {
        let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3")
        var p = GenerationParameters(prompt: "x")
        p.width = 30
        p.height = 32
        #expect(throws: GenerationError.badSize(width: 30, height: 32, multiple: 4)) { try pipeline.validate(p) }
        p.width = 128
        #expect(throws: GenerationError.tooLarge(width: 128, height: 32, max: 64)) { try pipeline.validate(p) }
        p.width = 32
        p.steps = 0
        #expect(throws: GenerationError.badSteps(0)) { try pipeline.validate(p) }
        p.steps = 4
        p.skipLayerGuidance = SkipLayerGuidance(layers: [5])
        #expect(throws: GenerationError.badSkipLayer(5, layers: 2)) { try pipeline.validate(p) }
        p.skipLayerGuidance = nil
        p.initImage = RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 48))
        p.strength = 0.1  // int(5 − 0.5) = 4 skipped, one step runs
        p.steps = 5
        var ran = 0
        _ = try pipeline.generate(p, onStep: { _ in ran += 1 })
        #expect(ran == 1)
        p.strength = 0
        #expect(throws: GenerationError.noStepsLeft(steps: 5, strength: 0)) { try pipeline.generate(p) }
        #expect(throws: ModelError.missingFile(path: "/nonexistent/model_index.json")) { try StableDiffusion3Pipeline(path: "/nonexistent") }
    }

    @Test func cancellationStopsTheLoop() throws {
        let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3")
        var p = GenerationParameters(prompt: "x")
        (p.width, p.height, p.steps) = (16, 16, 5)
        var seen = 0
        #expect(throws: CancellationError.self) {
            try pipeline.generate(p, isCancelled: { seen >= 2 }, onStep: { _ in seen += 1 })
        }
        #expect(seen == 2)
    }
}
