import ImageMetadata
import RegularFiles
import SD3
import Tensors

/// The layers of `GenerationSettings` that StudioCore's types make: the config file's [defaults], a recipe, and
/// a recalled PNG's settings.
extension SettingsLayer {
    /// The config's [defaults]. Its seed counts only when its seed mode is not random.
    public init(config d: ConfigFile.Defaults) {
        self.init()
        (prompt, negativePrompt, width, height) = (d.prompt.flatMap { $0.isEmpty ? nil : $0 }, d.negativePrompt, d.width, d.height)
        (steps, guidance, shift, maxSequenceLength) = (d.steps, d.guidance, d.shift, d.maxSequenceLength)
        seed = d.seedMode == .random ? nil : d.seed
        t5 = d.t5
        precision = d.precision.flatMap { Precision(rawValue: $0.rawValue) }
    }

    /// A recipe's steps, guidance, shift, scheduler and T5.
    public init(recipe r: Recipe) {
        self.init()
        (steps, guidance, shift, scheduler, t5) = (r.steps, r.guidance, r.shift, r.scheduler, r.t5)
    }

    /// What a PNG written by sd3 records; a recorded value this build does not know is an error naming it.
    public init(recalled m: ImageMetadata, file: String) throws(SettingsError) {
        self.init()
        (prompt, negativePrompt, width, height, steps) = (m.prompt, m.negativePrompt, m.width, m.height, m.steps)
        (guidance, shift, seed, maxSequenceLength) = (m.guidanceScale, m.shift, m.seed, m.maxSequenceLength)
        t5 = T5Mode(t5: m.t5, weights: m.t5Weights)
        guard let precision = Precision(rawValue: m.precision) else {
            throw SettingsError("\(file) records precision '\(m.precision.oneLine)', which must be fp32 or bf16")
        }
        self.precision = precision
        if let name = m.scheduler {
            guard let kind = SchedulerKind(rawValue: name) else {
                throw SettingsError("\(file) records scheduler '\(name.oneLine)', which must be euler or flash")
            }
            scheduler = kind
        }
        if let name = m.decoder {
            guard let decoder = ImageDecoder(rawValue: name) else {
                throw SettingsError("\(file) records decoder '\(name.oneLine)', which must be vae or taesd")
            }
            self.decoder = decoder
        }
    }
}

public struct SettingsError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
