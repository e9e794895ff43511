import Foundation
import ImageIO
import RegularFiles
import SafeTensors
import Tensors

/// How to load a model folder.
public struct LoadOptions: Sendable, Equatable {
    public var precision: Precision = .fp32
    /// T5-XXL (text_encoder_3): on; int8 (its projections weight-only int8 with per-row scales, `--t5 int8`: 4.9 GB
    /// instead of 9.5); or off (its embeddings are zeros, as diffusers with `text_encoder_3=None`).
    public var t5 = T5Mode.on
    public var useT5: Bool { t5 != .off }
    public var t5Int8: Bool { t5 == .int8 }
    /// Load the VAE encoder (needed for img2img only).
    public var withVAEEncoder = true
    /// Staged: each model is loaded when its phase starts and released when it ends (text encoders before
    /// denoising, the transformer before decoding), so peak memory is the largest phase, not the sum.
    /// Not staged: everything is loaded up front and kept (the studio, which runs again and again).
    public var staged = false
    public var backend: BackendKind = .oneDNN
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Separate encoder files and a config folder for a single-file model (`ModelSource.Extras`).
    public var files = ModelSource.Extras()
    /// LoRAs applied from the start (`--lora`), and how (`LoraMode`): merged for fixed strengths, run-time for the studio.
    public var loras: [LoraChoice] = []
    public var loraMode: LoraMode = .merged
    /// Where a repo id given as the model is looked up (the studio passes its own; default: the environment's).
    public var cache = HuggingFaceCache()
    /// A TAESD3 (`TAESDSource`: a diffusers folder, a folder of the single files or the decoder file): previews decode
    /// x0 with it and `--decoder taesd` finishes with it. nil: previews by the latent→RGB projection, no TAESD decoding.
    public var taesd: String?
    /// The studio's: a TAESD3 that cannot be loaded or does not fit the model is left out (`taesdProblem` says why), so
    /// previews fall back to the projection and drafts to the VAE; otherwise it is an error at load.
    public var taesdOptional = false

    public init() {}
}

/// An SD3 model (diffusers folder or single-file checkpoints, see `ModelSource`) set up for generation: txt2img and img2img as diffusers'
/// StableDiffusion3Pipeline / StableDiffusion3Img2ImgPipeline compute them (0.42.1).
public final class StableDiffusion3Pipeline: @unchecked Sendable {
    public let path: String
    public let source: ModelSource
    public let options: LoadOptions
    public let compute: Compute
    public let transformerConfig: SD3TransformerConfig
    public let vaeConfig: AutoencoderKLConfig
    public let schedulerConfig: FlowMatchEulerDiscreteScheduler.Config
    /// Whether T5 runs: asked for, and the folder has text_encoder_3.
    public let hasT5: Bool
    /// The TAESD3 named in the options, loaded and checked at init (it is small: kept); nil when none, or left out.
    public let taesdSource: TAESDSource?
    private let loadedTAESD: AutoencoderTiny?
    /// Why the options' TAESD3 was left out (`LoadOptions.taesdOptional`), one line.
    public let taesdProblem: String?
    /// The options' LoRAs (`--lora`): merged mode, in the weights already; run-time mode, what a generation given no
    /// LoRAs of its own passes into the models.
    public let loras: ActiveLoras
    private let lock = NSLock()
    private var loadedTextEncoders: PromptEncoder?
    private var loadedTransformer: SD3Transformer2DModel?
    private var loadedVAE: AutoencoderKL?

    /// `path`: a diffusers folder, a single-file checkpoint or a cached Hugging Face repo id (`ModelSource`).
    public convenience init(path: String, options: LoadOptions = LoadOptions()) throws {
        try self.init(source: try ModelSource(path, extras: options.files, cache: options.cache), options: options)
    }

    public init(source: ModelSource, options: LoadOptions = LoadOptions()) throws {
        var source = source
        loras = try ActiveLoras.read(options.loras)
        source.mergedLoras = options.loraMode == .merged ? loras.list : []
        self.source = source
        path = source.path
        self.options = options
        compute = try Compute(backend: options.backend, threads: options.threads)
        transformerConfig = try source.transformerConfig()
        schedulerConfig = try source.schedulerConfig()
        _ = try FlowMatchEulerDiscreteScheduler(config: schedulerConfig)
        if case let .diffusers(folder) = source.layout {
            hasT5 = options.useT5 && source.has(.textEncoder3)
            for name in ["text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"] + (hasT5 ? ["text_encoder_3", "tokenizer_3"] : []) {
                _ = try ComponentFolder(folder + "/" + name)
            }
        } else {
            // A single file without T5 is an error unless T5 was turned off: the user should know quality drops.
            if options.useT5 && !source.has(.textEncoder3) { throw source.missing(.textEncoder3) }
            hasT5 = options.useT5
            for component in [SD3Component.vae, .textEncoder, .textEncoder2] where !source.has(component) { throw source.missing(component) }
            _ = try source.tokenizerFolders(useT5: hasT5)
        }
        // After the files are found: a missing tokenizer is the first thing to fix.
        vaeConfig = try source.vaeConfig()
        try Self.checkAgreement(transformerConfig, vaeConfig, source: source)
        var taesd: (source: TAESDSource, model: AutoencoderTiny)?, problem: String?
        if let path = options.taesd {
            do {
                let found = try TAESDSource(path)
                taesd = (found, try Self.loadTAESD(found, precision: options.precision, transformer: transformerConfig, vae: vaeConfig))
            } catch {
                guard options.taesdOptional else { throw error }
                problem = "\(error)"
            }
        }
        (taesdSource, loadedTAESD, taesdProblem) = (taesd?.source, taesd?.model, problem)
        if !options.staged {
            _ = try transformer()
            _ = try textEncoders()
            _ = try vae()
        }
    }

    /// The models, loaded on first use (and kept until `release`).
    public func textEncoders() throws -> PromptEncoder {
        try lock.withLock {
            if let loadedTextEncoders { return loadedTextEncoders }
            for component in [SD3Component.textEncoder, .textEncoder2] + (hasT5 ? [.textEncoder3] : []) where source.has(component) {
                let bytes = component == .textEncoder3 && options.t5Int8 ? 1 : options.precision == .bf16 ? 2 : 4
                try Self.requireFits(try source.weights(component), bytesPerWeight: bytes)
            }
            let loaded = try PromptEncoder(source: source, jointAttentionDim: transformerConfig.jointAttentionDim, t5: hasT5 ? options.t5 : .off,
                                           precision: options.precision)
            try Self.checkT5Vocabulary(loaded, source: source)
            try loaded.check(loras)
            loadedTextEncoders = loaded
            return loaded
        }
    }

    public func transformer() throws -> SD3Transformer2DModel {
        try lock.withLock {
            if let loadedTransformer { return loadedTransformer }
            let weights = try source.weights(.transformer)
            try Self.requireFits(weights, bytesPerWeight: options.precision == .bf16 ? 2 : 4)
            let loaded = try SD3Transformer2DModel(config: transformerConfig, weights: weights, precision: options.precision)
            try loras.check(.transformer, layers: loaded.loraLayers)
            loadedTransformer = loaded
            return loaded
        }
    }

    public func vae() throws -> AutoencoderKL {
        try lock.withLock {
            if let loadedVAE { return loadedVAE }
            let weights = try source.weights(.vae)
            try Self.requireFits(weights, bytesPerWeight: 4)
            let loaded = try AutoencoderKL(config: vaeConfig, weights: weights, precision: options.precision,
                                           withEncoder: options.withVAEEncoder)
            loadedVAE = loaded
            return loaded
        }
    }

    /// The TAESD3 of the options (nil when none), loaded once; it must decode this model's latents: as many channels
    /// as the transformer gives and the VAE's scale, so a draft and its refinement are the same picture.
    public var taesd: AutoencoderTiny? { loadedTAESD }

    static func loadTAESD(_ source: TAESDSource, precision: Precision, transformer: SD3TransformerConfig,
                          vae: AutoencoderKLConfig) throws -> AutoencoderTiny {
        let loaded = try source.load(precision: precision)
        let (channels, scale) = (transformer.outChannels, vae.scaleFactor)
        guard loaded.config.latentChannels == channels, loaded.config.scaleFactor == scale else {
            throw ModelError.unsupported(path: source.path, reason: "a TAESD for \(loaded.config.latentChannels)-channel latents at ×\(loaded.config.scaleFactor); this model's are \(channels)-channel at ×\(scale) (SD3 needs TAESD3, \(TAESDSource.repo))")
        }
        return loaded
    }

    /// Run-time mode only: the LoRAs `choices` name, as a value to pass to `encode`, `denoiser` and `generate`; the
    /// pipeline and its models do not change, so no reload. Files of `previous` (default: the options' LoRAs) that did
    /// not change on disk are reused. Every pair is checked against the models loaded now (a model loaded later is
    /// checked before it runs with them). An empty list runs the base model bit for bit.
    public func loras(_ choices: [LoraChoice], reusing previous: ActiveLoras? = nil) throws -> ActiveLoras {
        guard options.loraMode == .runTime else { throw LoraError.notRunTime }
        let active = try ActiveLoras.read(choices, reusing: previous ?? loras)
        let (encoders, transformer) = lock.withLock { (loadedTextEncoders, loadedTransformer) }
        try encoders?.check(active)
        if let transformer { try active.check(.transformer, layers: transformer.loraLayers) }
        return active
    }

    /// The LoRAs a run passes into the models: `given`, else the options'; none in merged mode (they are in the
    /// weights), where giving some is an error.
    func runTimeLoras(_ given: ActiveLoras?) throws -> ActiveLoras {
        guard options.loraMode == .runTime else {
            if let given, !given.isEmpty { throw LoraError.notRunTime }
            return .none
        }
        return given ?? loras
    }

    /// The denoising loop on the transformer (loaded if need be), with the transformer's pairs of `loras` (default: the
    /// options'), checked against it first.
    public func denoiser(loras given: ActiveLoras? = nil) throws -> Denoiser {
        let active = try runTimeLoras(given)
        let model = try transformer()
        try active.check(.transformer, layers: model.loraLayers)
        return Denoiser(transformer: model, compute: compute, loras: active[.transformer])
    }

    public enum Part: Sendable, Hashable { case textEncoders, transformer, vae }

    /// Which models are in memory now.
    public var loaded: Set<Part> {
        lock.withLock {
            var parts: Set<Part> = []
            if loadedTextEncoders != nil { parts.insert(.textEncoders) }
            if loadedTransformer != nil { parts.insert(.transformer) }
            if loadedVAE != nil { parts.insert(.vae) }
            return parts
        }
    }

    /// Drops a model so its memory returns; the next use loads it again.
    public func release(_ part: Part) {
        lock.withLock {
            switch part {
            case .textEncoders: loadedTextEncoders = nil
            case .transformer: loadedTransformer = nil
            case .vae: loadedVAE = nil
            }
        }
    }

    /// Pixels per latent cell times the patch size: image sides must be multiples of this.
    public var sizeMultiple: Int { vaeConfig.scaleFactor * transformerConfig.patchSize }

    public func validate(_ p: GenerationParameters) throws {
        let m = sizeMultiple
        guard p.width >= m, p.height >= m, p.width % m == 0, p.height % m == 0 else {
            throw GenerationError.badSize(width: p.width, height: p.height, multiple: m)
        }
        let maxSide = transformerConfig.posEmbedMaxSize * m
        guard p.width <= maxSide, p.height <= maxSide else { throw GenerationError.tooLarge(width: p.width, height: p.height, max: maxSide) }
        guard GenerationLimits.steps.contains(p.steps) else { throw GenerationError.badSteps(p.steps) }
        guard p.guidanceScale.isFinite, GenerationLimits.guidance.contains(p.guidanceScale) else { throw GenerationError.badGuidance(p.guidanceScale) }
        guard (1...512).contains(p.maxSequenceLength) else { throw PromptError.maxSequenceLength(p.maxSequenceLength) }
        if let shift = p.shift { guard shift.isFinite, GenerationLimits.shift.contains(shift) else { throw GenerationError.badShift(shift) } }
        if let v = p.variation { guard v.strength.isFinite, (0...1).contains(v.strength) else { throw GenerationError.badVariationStrength(v.strength) } }
        if p.decoder == .taesd && loadedTAESD == nil { throw GenerationError.noTAESD }
        if p.initImage != nil {
            guard p.strength.isFinite, (0...1).contains(p.strength) else { throw GenerationError.badStrength(p.strength) }
            guard options.withVAEEncoder else { throw GenerationError.noEncoder }
        }
        if let slg = p.skipLayerGuidance {
            if let bad = slg.layers.first(where: { !(0..<transformerConfig.numLayers).contains($0) }) {
                throw GenerationError.badSkipLayer(bad, layers: transformerConfig.numLayers)
            }
            if let problem = GenerationLimits.problem("skip-layer guidance scale", slg.scale, GenerationLimits.skipLayerScale)
                ?? GenerationLimits.problem("skip-layer guidance start", slg.start, 0...1) ?? GenerationLimits.problem("skip-layer guidance stop", slg.stop, 0...1) {
                throw GenerationError.badSetting(problem)
            }
        }
    }

    /// The prompt's conditioning, with the CLIP pairs of `loras` (run-time mode; default: the options'). Staged (and the
    /// encoders not already loaded): CLIP-L and CLIP-G are loaded, run and dropped, then T5 alone, so the text phase
    /// peaks at T5's size rather than all three together.
    public func encode(_ p: GenerationParameters, loras given: ActiveLoras? = nil,
                       onPhase: (String, Double) -> Void = { _, _ in }) throws -> Conditioning {
        let active = try runTimeLoras(given)
        func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let start = Date()
            defer { onPhase(name, Date().timeIntervalSince(start)) }
            return try body()
        }
        let (prompts, negatives) = ([p.prompt], [p.negativePrompt])
        if !options.staged || loaded.contains(.textEncoders) {
            let encoders = try timed("load text encoders") { try textEncoders() }
            return try timed("encode prompt") {
                try encoders.encode(prompts: prompts, negative: negatives, guidance: p.usesGuidance,
                                    maxSequenceLength: p.maxSequenceLength, compute: compute, loras: active)
            }
        }
        let joint = transformerConfig.jointAttentionDim
        let half = try {
            let clip = try timed("load CLIP encoders") {
                let encoder = try PromptEncoder(source: source, jointAttentionDim: joint, t5: .off, precision: options.precision,
                                                models: .clipOnly)
                // Merged LoRAs are in its weights: each pair must have found a layer of its shape.
                if options.loraMode == .merged { try encoder.check(loras) }
                return encoder
            }
            return try timed("encode CLIP") {
                try clip.encodeCLIP(prompts: prompts, negative: negatives, guidance: p.usesGuidance,
                                    maxSequenceLength: p.maxSequenceLength, compute: compute, loras: active)
            }
        }()
        let t5 = try timed(hasT5 ? "load T5" : "T5 off") {
            let encoder = try PromptEncoder(source: source, jointAttentionDim: joint, t5: hasT5 ? options.t5 : .off,
                                            precision: options.precision, models: .t5Only)
            try Self.checkT5Vocabulary(encoder, source: source)
            return encoder
        }
        return try timed(hasT5 ? "encode T5" : "T5 zeros") {
            try t5.encodeT5(half, prompts: prompts, negative: negatives, guidance: p.usesGuidance,
                            maxSequenceLength: p.maxSequenceLength, compute: compute)
        }
    }

    /// The schedule, the starting latents (noise, or the noised init image) and the first step, drawing from
    /// the seed's generator in diffusers' order (img2img: posterior sample first, then the noise), each draw
    /// mixed with the variation seed's when there is one. The flash scheduler keeps drawing from the same generator.
    public func prepare(_ p: GenerationParameters) throws -> (Sampler, Tensor, Int) {
        var config = schedulerConfig
        if let shift = p.shift { config.shift = shift }
        var scheduler = try FlowMatchEulerDiscreteScheduler(config: config)
        let f = vaeConfig.scaleFactor
        let shape = [1, transformerConfig.inChannels, p.height / f, p.width / f]
        let mu = schedulerConfig.useDynamicShifting ? scheduler.mu(imageSequenceLength: (p.height / sizeMultiple) * (p.width / sizeMultiple)) : nil
        try scheduler.setTimesteps(p.steps, mu: mu)
        var flash: FlashFlowMatchEulerDiscreteScheduler?
        if p.scheduler == .flash {
            var s = try FlashFlowMatchEulerDiscreteScheduler(numTrainTimesteps: config.numTrainTimesteps, shift: config.shift)
            try s.setTimesteps(p.steps)
            flash = s
        }
        var generator = VariationNoise(seed: p.seed, variation: p.variation)
        func sampler() -> Sampler { flash.map { .flash($0, noise: generator) } ?? .euler(scheduler) }
        guard let image = p.initImage else {
            let start = Tensor(shape: shape, data: generator.randn(shape))
            return (sampler(), start, 0)
        }
        let begin = scheduler.beginIndex(strength: p.strength)
        guard begin < p.steps else { throw GenerationError.noStepsLeft(steps: p.steps, strength: p.strength) }
        let pixels = VaeImageProcessor.preprocess(image, width: p.width, height: p.height)
        let vae = try vae()
        let (mean, logvar) = try vae.encode(pixels, compute: compute)
        let x0 = vae.toModelSpace(vae.sample(mean: mean, logvar: logvar, generator: &generator))
        let noise = generator.randn(shape)
        let start = flash?.scaleNoise(x0.data, noise: noise, index: begin) ?? scheduler.scaleNoise(x0.data, noise: noise, index: begin)
        return (sampler(), Tensor(shape: shape, data: start), begin)
    }

    /// Latents in the transformer's space → images, by the VAE or by TAESD3 (which takes them as they are, see
    /// `AutoencoderTinyConfig.scalingFactor`).
    public func decode(_ latents: Tensor, with decoder: ImageDecoder = .vae, isCancelled: () -> Bool = { false }) throws -> [RGBImage] {
        let images: Tensor
        switch decoder {
        case .vae:
            let vae = try vae()
            images = try FreedMemoryReuse.reusingFreedMemory {
                try vae.decode(vae.fromModelSpace(latents), compute: compute, isCancelled: isCancelled)
            }
        case .taesd:
            guard let taesd else { throw GenerationError.noTAESD }
            images = try taesd.decode(latents, compute: compute, isCancelled: isCancelled)
        }
        guard images.data.allSatisfy(\.isFinite) else { throw GenerationError.nonFinite(step: nil) }
        return VaeImageProcessor.postprocess(images)
    }

    /// The whole generation in one call (the CLI's path; the studio drives the steps through InferenceEngine), with
    /// `loras` (run-time mode; default: the options'). `onPhase` hears each phase's name and seconds as it ends (load and
    /// run of every model).
    public func generate(_ p: GenerationParameters, conditioning: Conditioning? = nil, loras: ActiveLoras? = nil,
                         isCancelled: () -> Bool = { false },
                         onPhase: (String, Double) -> Void = { _, _ in },
                         onStep: (StepProgress) throws -> Void = { _ in }) throws -> RGBImage {
        try validate(p)
        func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let start = Date()
            defer { onPhase(name, Date().timeIntervalSince(start)) }
            return try body()
        }
        let c: Conditioning
        if let conditioning {
            c = conditioning
        } else {
            c = try encode(p, loras: loras, onPhase: onPhase)
        }
        if options.staged { release(.textEncoders) }
        let (scheduler, start, begin) = try timed("prepare latents") { try prepare(p) }
        _ = try timed("load transformer") { try transformer() }
        let latents = try timed("denoise") {
            try denoiser(loras: loras)
                .run(latents: start, conditioning: c, scheduler: scheduler, beginIndex: begin, guidanceScale: p.guidanceScale,
                     skipLayerGuidance: p.skipLayerGuidance, isCancelled: isCancelled, onStep: onStep)
        }
        if options.staged { release(.transformer) }
        if p.decoder == .vae { _ = try timed("load VAE") { try vae() } }
        return try timed("decode") { try decode(latents, with: p.decoder, isCancelled: isCancelled)[0] }
    }
}

public enum GenerationError: Error, Equatable, CustomStringConvertible {
    case badSize(width: Int, height: Int, multiple: Int)
    case tooLarge(width: Int, height: Int, max: Int)
    case badSteps(Int)
    case badGuidance(Double)
    case badStrength(Double)
    case noEncoder
    case noStepsLeft(steps: Int, strength: Double)
    case badSkipLayer(Int, layers: Int)
    case badShift(Double)
    case badVariationStrength(Double)
    /// A number out of its range, described by `GenerationLimits.problem`.
    case badSetting(String)
    /// A latent (after step `step`, 1-based) or the decoded image (`step` nil) holds NaN or Inf.
    case nonFinite(step: Int?)
    /// `--decoder taesd` without a TAESD3 (none given, configured or found).
    case noTAESD

    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .badSize(w, h, m): return "size \(w)×\(h): width and height must be positive multiples of \(m)"
        case let .tooLarge(w, h, m): return "size \(w)×\(h) exceeds this model's largest side, \(m) pixels"
        case let .badSteps(n): return "steps \(n): must be between \(GenerationLimits.steps.lowerBound) and \(GenerationLimits.steps.upperBound)"
        case let .badGuidance(g): return GenerationLimits.problem("guidance", g, GenerationLimits.guidance) ?? "guidance \(g)"
        case let .badStrength(s): return "strength \(s): must be between 0 and 1"
        case .noEncoder: return "img2img needs the VAE encoder, which was not loaded"
        case let .noStepsLeft(n, s): return "strength \(s) with \(n) steps leaves no step to run; raise the strength or the steps"
        case let .badSkipLayer(i, n): return "skip layer \(i): the transformer has blocks 0…\(n - 1)"
        case let .badShift(x): return GenerationLimits.problem("shift", x, GenerationLimits.shift) ?? "shift \(x)"
        case let .badVariationStrength(s): return "variation strength \(s): must be between 0 and 1"
        case let .badSetting(problem): return problem
        case let .nonFinite(step?): return "the model produced NaN/Inf at step \(step) (weights or settings)"
        case .nonFinite(nil): return "the VAE produced NaN/Inf while decoding (weights or settings)"
        case .noTAESD: return "decoder taesd needs a TAESD3: give --taesd PATH (or taesd = \"…\" in the config), or put \(TAESDSource.repo) in the models folder or the Hugging Face cache"
        }
    }
}
