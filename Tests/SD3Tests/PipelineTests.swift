import Foundation
import ImageIO
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// End to end against diffusers 0.42.1 on the tiny pipeline (scripts/fixtures/pipeline.py): txt2img with and
/// without guidance, with skip-layer guidance, and img2img; final latents within the fp32 limit and pixels ≥ 45 dB PSNR.
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

    /// The pipeline folder `base` with another transformer, assembled from links in a temporary folder `name`
    /// (diffusers' side does the same swap).
    static func withTransformer(_ transformer: String, base: String, name: String) -> String {
        let folder = NSTemporaryDirectory() + "\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for entry in try! FileManager.default.contentsOfDirectory(atPath: base) where entry != "transformer" {
            try! FileManager.default.createSymbolicLink(atPath: folder + "/" + entry, withDestinationPath: base + "/" + entry)
        }
        try! FileManager.default.createSymbolicLink(atPath: folder + "/transformer", withDestinationPath: transformer)
        return folder
    }

    /// tiny-sd3 with the SD3.5-style transformer.
    static let sd35Folder = withTransformer(fixtures + "/tiny-sd35-transformer", base: fixtures + "/tiny-sd3", name: "tiny-sd35")

    struct Setup: Sendable, CustomStringConvertible {
        let backend: BackendKind, precision: Precision
        var description: String { "\(backend.rawValue) \(precision.rawValue)" }
    }

    /// A fixture case's settings (pipeline.py and diffusers_dummy.py write the same keys); a case without a size takes
    /// the model's default, as diffusers did.
    static func parameters(_ c: [String: Any], defaults: ModelDefaults, initImage: RGBImage) -> GenerationParameters {
        var p = GenerationParameters(prompt: c["prompt"] as! String)
        p.negativePrompt = c["negative_prompt"] as! String
        p.width = c["width"] as? Int ?? defaults.width!
        p.height = c["height"] as? Int ?? defaults.height!
        p.steps = c["steps"] as! Int
        p.guidanceScale = (c["guidance"] as! NSNumber).doubleValue
        p.seed = UInt64(c["seed"] as! String)!
        p.maxSequenceLength = c["max_sequence_length"] as! Int
        if let layers = c["skip_layers"] as? [Int] { p.skipLayerGuidance = SkipLayerGuidance(layers: layers) }
        if c["kind"] as! String == "img2img" {
            p.initImage = initImage
            p.strength = (c["strength"] as! NSNumber).doubleValue
        }
        return p
    }

    /// The fp32 limit on final latents: the text encoders' chain, then one transformer chain (each step's error is scaled
    /// by its dt, and the dts sum to 1) and one rounding per scheduler step.
    static func latentLimit(_ pipeline: StableDiffusion3Pipeline, _ p: GenerationParameters, textTokens: Int) throws -> ParityLimit {
        let source = try ModelSource(pipeline.path)
        let text = ParityLimit.clip(try source.clipConfig(.textEncoder)).or(.t5(try source.t5Config(), tokens: textTokens))
        let c = pipeline.transformerConfig, scale = pipeline.vaeConfig.scaleFactor * c.patchSize
        let step = ParityLimit.transformer(c, tokens: (p.width / scale) * (p.height / scale) + 77 + textTokens)
        return text.then(step).then(ParityLimit(chain: p.steps, length: 1))
    }

    struct Outcome {
        var psnr: Double, worstPixel: Int
        /// The final latents' error and what the fp32 limit allows.
        var latentError: Float, latentAllowed: Float
    }

    /// Runs every case of `reference` (models named in its cases, from `folders`) with `options`.
    static func runCases(_ reference: SafeTensorsFile, folders: [String: String], options base: LoadOptions,
                         check: (String, Outcome) -> Void) throws -> [StableDiffusion3Pipeline] {
        let cases = try JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        let initImage = try PNGFile.read(Self.fixtures + "/init.png").image
        var pipelines: [String: StableDiffusion3Pipeline] = [:]
        for (index, c) in cases.enumerated() {
            let model = c["model"] as! String, t5 = c["t5"] as! Bool
            var options = base
            options.t5 = t5 ? .on : .off
            let key = "\(model)-\(t5)"
            if pipelines[key] == nil { pipelines[key] = try StableDiffusion3Pipeline(path: folders[model]!, options: options) }
            let pipeline = pipelines[key]!
            let p = Self.parameters(c, defaults: try ModelDefaults.resolved(ModelSource(pipeline.path)), initImage: initImage)
            var latents: Tensor?
            let image = try pipeline.generate(p, onStep: { step in if step.index + 1 == step.total { latents = step.latents } })
            let info = try #require(reference.info("case\(index).image"))
            let pixels = Array(reference.bytes(info))
            let label = "case \(index) (\(model), \(c["kind"]!), \(options.backend.rawValue) \(options.precision.rawValue))"
            #expect(image.width == info.shape[1] && image.height == info.shape[0], "\(label): size")
            let limit = try Self.latentLimit(pipeline, p, textTokens: p.maxSequenceLength)
            let (error, allowed) = limit.check(try #require(latents), try reference.tensor("case\(index).latents"))
            let worstPixel = zip(image.pixels, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            check(label, Outcome(psnr: Self.psnr(image.pixels, pixels), worstPixel: worstPixel, latentError: error, latentAllowed: allowed))
        }
        return Array(pipelines.values)
    }

    static let folders = ["sd3": fixtures + "/tiny-sd3", "sd35": sd35Folder]

    /// Every fixture case in fp32 on both backends: final latents within the fp32 limit, ≥ 45 dB and ≤ 8 levels per pixel.
    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func matchesDiffusers(backend: BackendKind) throws {
        var options = LoadOptions()
        (options.backend, options.threads) = (backend, 2)
        _ = try Self.runCases(Self.reference, folders: Self.folders, options: options) { label, o in
            #expect(o.latentError <= o.latentAllowed, "\(label): latents max abs error \(o.latentError) > \(o.latentAllowed)")
            #expect(o.psnr >= 45 && o.worstPixel <= 8, "\(label): PSNR \(o.psnr) dB, max pixel difference \(o.worstPixel)")
        }
    }

    static let nativeBF16 = (try? OneDNNBackend(threads: 1))?.nativeBF16 ?? false

    /// bf16 weights end to end ≥ 30 dB, their latents outside the fp32 limit (the limit catches a bf16 slip), through
    /// the path this CPU takes: `native` asserts oneDNN's bf16 kernels ran and nothing was widened; `widened` the reverse.
    static func bf16MatchesDiffusers(native: Bool) throws {
        var options = LoadOptions()
        (options.backend, options.precision, options.threads) = (.oneDNN, .bf16, 2)
        let pipelines = try Self.runCases(Self.reference, folders: Self.folders, options: options) { label, o in
            #expect(o.psnr >= 30, "\(label): PSNR \(o.psnr) dB")
            #expect(o.latentError > o.latentAllowed, "\(label): bf16 latents within the fp32 limit (\(o.latentError) ≤ \(o.latentAllowed))")
        }
        for pipeline in pipelines {
            let counts = try #require(pipeline.compute.backend as? OneDNNBackend).bf16Products
            if native {
                #expect(counts.native > 0 && counts.widened == 0, "bf16 products: \(counts) on \(OneDNNBackend.instructionSet)")
            } else {
                #expect(counts.native == 0 && counts.widened > 0, "bf16 products: \(counts) on \(OneDNNBackend.instructionSet)")
            }
        }
    }

    @Test(.enabled(if: nativeBF16, "no native bf16 on this CPU (oneDNN: \(OneDNNBackend.instructionSet)): bf16 runs widened to fp32"))
    func bf16NativeMatchesDiffusers() throws { try Self.bf16MatchesDiffusers(native: true) }

    @Test(.enabled(if: !nativeBF16, "native bf16 on this CPU: the widened path runs with ONEDNN_MAX_CPU_ISA=AVX2 (make test's second pass)"))
    func bf16WidenedMatchesDiffusers() throws { try Self.bf16MatchesDiffusers(native: false) }

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
