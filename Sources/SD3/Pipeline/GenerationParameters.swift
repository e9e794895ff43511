import ImageIO

/// Everything that determines an image: the same parameters and seed give the same pixels.
public struct GenerationParameters: Sendable, Equatable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var width: Int = 1024
    public var height: Int = 1024
    public var steps: Int = 28
    public var guidanceScale: Double = 7.0
    public var seed: UInt64 = 0
    /// A1111's variation seed and strength: the noise is slerped toward this seed's noise; nil is the seed's alone.
    public var variation: VariationSeed?
    /// T5 tokens (`max_sequence_length`, 1…512).
    public var maxSequenceLength: Int = 256
    /// img2img: the starting image and how much of the schedule to run (0…1).
    public var initImage: RGBImage?
    public var strength: Double = 0.6
    /// Overrides the scheduler config's shift when set.
    public var shift: Double?
    /// The scheduler that steps the run; `.flash` is Flash-SD3's (x0 prediction re-noised from the seed's generator).
    public var scheduler: SchedulerKind = .euler
    /// The recipe these settings came from (`--recipe`, the studio's Recipe field): recorded in the PNG, nothing else.
    public var recipe: String?
    /// Skip-layer guidance (SD3.5): blocks skipped in the extra conditional pass; nil turns it off.
    public var skipLayerGuidance: SkipLayerGuidance?
    /// What turns the final latents into the image: the full VAE, or TAESD3 (a draft in about a second).
    public var decoder: ImageDecoder = .vae

    public init(prompt: String) { self.prompt = prompt }

    /// diffusers' `do_classifier_free_guidance`: guidance above 1 runs an unconditional pass too.
    public var usesGuidance: Bool { guidanceScale > 1 }
}

/// The image decoder (`--decoder`): SD3's AutoencoderKL, or TAESD3 (AutoencoderTiny).
public enum ImageDecoder: String, Sendable, Equatable, CaseIterable, Codable {
    case vae, taesd
}

/// diffusers' skip-layer guidance settings (StableDiffusion3Pipeline.__call__ defaults).
public struct SkipLayerGuidance: Sendable, Equatable {
    public var layers: [Int]
    public var scale: Double = 2.8
    public var start: Double = 0.01
    public var stop: Double = 0.2

    public init(layers: [Int]) { self.layers = layers }

    /// Active at step i of n iff i > n·start and i < n·stop (strict, as diffusers compares).
    public func isActive(step i: Int, of n: Int) -> Bool {
        Double(i) > Double(n) * start && Double(i) < Double(n) * stop
    }
}
