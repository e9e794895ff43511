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

    /// tiny-sd3 with the SD3.5-style transformer, assembled from links (diffusers' side does the same swap).
    static let sd35Folder: String = {
        let folder = NSTemporaryDirectory() + "tiny-sd35-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = fixtures + "/tiny-sd3"
        for entry in try! FileManager.default.contentsOfDirectory(atPath: source) where entry != "transformer" {
            try! FileManager.default.createSymbolicLink(atPath: folder + "/" + entry, withDestinationPath: source + "/" + entry)
        }
        try! FileManager.default.createSymbolicLink(atPath: folder + "/transformer", withDestinationPath: fixtures + "/tiny-sd35-transformer")
        return folder
    }()

    struct Setup: Sendable, CustomStringConvertible {
        let backend: BackendKind, precision: Precision
        var description: String { "\(backend.rawValue) \(precision.rawValue)" }
    }

    /// Every fixture case on one backend and precision: fp32 within 1e-4 on latents, ≥ 45 dB and ≤ 8 levels per pixel;
    /// bf16 ≥ 30 dB.
    @Test(arguments: [Setup(backend: .oneDNN, precision: .fp32), Setup(backend: .openBLAS, precision: .fp32),
                      Setup(backend: .oneDNN, precision: .bf16)])
    func matchesDiffusers(setup: Setup) throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        let initImage = try PNGFile.read(Self.fixtures + "/init.png").image
        var pipelines: [String: StableDiffusion3Pipeline] = [:]
        for (index, c) in cases.enumerated() {
            let model = c["model"] as! String, t5 = c["t5"] as! Bool
            var options = LoadOptions()
            (options.backend, options.precision, options.threads, options.useT5) = (setup.backend, setup.precision, 2, t5)
            let key = "\(model)-\(t5)"
            if pipelines[key] == nil {
                pipelines[key] = try StableDiffusion3Pipeline(path: model == "sd3" ? Self.fixtures + "/tiny-sd3" : Self.sd35Folder, options: options)
            }
            let pipeline = pipelines[key]!
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
            let label = "case \(index) (\(model), \(c["kind"]!), \(setup))"
            var latents: Tensor?
            let image = try pipeline.generate(p, onStep: { step in if step.index + 1 == step.total { latents = step.latents } })
            let info = try #require(Self.reference.info("case\(index).image"))
            let pixels = Array(Self.reference.bytes(info))
            #expect(image.width == info.shape[1] && image.height == info.shape[0], "\(label): size")
            let quality = Self.psnr(image.pixels, pixels)
            let worstPixel = zip(image.pixels, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            if setup.precision == .fp32 {
                let expected = try Self.reference.tensor("case\(index).latents")
                let worst = zip(try #require(latents).data, expected.data).map { abs($0 - $1) }.max() ?? .infinity
                #expect(worst <= 1e-4, "\(label): latents max abs error \(worst)")
                #expect(quality >= 45 && worstPixel <= 8, "\(label): PSNR \(quality) dB, max pixel difference \(worstPixel)")
            } else {
                #expect(quality >= 30, "\(label): PSNR \(quality) dB")
            }
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
        #expect(throws: ModelSourceError.notFound("/nonexistent")) { try StableDiffusion3Pipeline(path: "/nonexistent") }
    }

    /// Staged loading gives the same pixels, loads each model only for its phase and reports every phase.
    @Test func stagedLoadingReleasesModelsAndKeepsThePixels() throws {
        var p = GenerationParameters(prompt: "a red circle")
        (p.width, p.height, p.steps, p.seed) = (16, 16, 3, 5)
        let kept = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3")
        #expect(kept.loaded == [.textEncoders, .transformer, .vae])
        var options = LoadOptions()
        options.staged = true
        let staged = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: options)
        #expect(staged.loaded.isEmpty)
        var phases: [String] = []
        let image = try staged.generate(p, onPhase: { name, _ in phases.append(name) })
        #expect(image == (try kept.generate(p)))
        #expect(staged.loaded == [.vae], "after a staged run only the VAE may stay: \(staged.loaded)")
        // The CLIP pair and T5 are loaded one after the other, never together.
        #expect(phases == ["load CLIP encoders", "encode CLIP", "load T5", "encode T5", "prepare latents", "load transformer",
                           "denoise", "load VAE", "decode"])
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
