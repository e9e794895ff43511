import Tensors

/// Where a generation setting came from, lowest layer first: each layer overrides the ones before it. `studio`: the
/// studio set the value itself (a seed its seed mode drew, a seed grid's pick, a size preset); never a CLI layer.
public enum SettingSource: Int, Sendable, Comparable, CaseIterable {
    case builtIn, model, config, recalled, recipe, given, studio

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var name: String {
        switch self {
        case .builtIn: return "built-in default"
        case .model: return "model defaults"
        case .config: return "config file"
        case .recalled: return "recalled PNG"
        case .recipe: return "recipe"
        case .given: return "given"
        case .studio: return "set by the studio"
        }
    }
}

/// The settings one layer says something about; nil means "this layer is silent".
public struct SettingsLayer: Sendable, Equatable {
    public var prompt: String?
    public var negativePrompt: String?
    public var width: Int?
    public var height: Int?
    public var steps: Int?
    public var guidance: Double?
    public var shift: Double?
    public var seed: UInt64?
    public var maxSequenceLength: Int?
    public var scheduler: SchedulerKind?
    public var t5: T5Mode?
    public var precision: Precision?
    public var decoder: ImageDecoder?

    public init() {}

    /// diffusers' StableDiffusion3Pipeline call defaults where nothing else speaks (num_inference_steps 28,
    /// guidance_scale 7.0, max_sequence_length 256, negative prompt "" encoded as such); fp32 and the VAE are ours.
    public static let builtIn: SettingsLayer = {
        var layer = SettingsLayer()
        (layer.negativePrompt, layer.steps, layer.guidance, layer.maxSequenceLength) = ("", 28, 7, 256)
        (layer.scheduler, layer.t5, layer.precision, layer.decoder) = (.euler, .on, .fp32, .vae)
        return layer
    }()

    /// A model's defaults.json (or its configs' size and shift, `ModelDefaults.resolved`).
    public init(_ d: ModelDefaults) {
        (width, height, steps, guidance) = (d.width, d.height, d.steps, d.guidanceScale)
        (shift, maxSequenceLength, negativePrompt) = (d.shift, d.maxSequenceLength, d.negativePrompt)
    }
}

/// The one resolution of a generation's settings for the CLI and the studio: built-in → model defaults → config
/// file → recalled PNG → recipe → given (flags or fields), each value with the layer it came from.
public struct GenerationSettings: Sendable {
    public struct Layer: Sendable {
        public var source: SettingSource
        /// Which file or name, shown after the source ("recipe hyper-8", "config file ~/.config/…").
        public var detail: String?
        public var values: SettingsLayer
        public init(_ source: SettingSource, _ detail: String? = nil, _ values: SettingsLayer) {
            (self.source, self.detail, self.values) = (source, detail, values)
        }
    }

    public private(set) var layers: [Layer]

    /// Layers in any order; they are applied by their source, the built-in layer first when none is given.
    public init(_ layers: [Layer]) {
        let all = layers.contains { $0.source == .builtIn } ? layers : [Layer(.builtIn, nil, .builtIn)] + layers
        self.layers = all.enumerated().sorted { ($0.element.source, $0.offset) < ($1.element.source, $1.offset) }.map(\.element)
    }

    /// The value of the highest layer that has one, and that layer.
    public func resolve<T>(_ key: KeyPath<SettingsLayer, T?>) -> (value: T, from: Layer)? {
        for layer in layers.reversed() { if let value = layer.values[keyPath: key] { return (value, layer) } }
        return nil
    }

    public func value<T>(_ key: KeyPath<SettingsLayer, T?>) -> T? { resolve(key)?.value }

    public func source<T>(_ key: KeyPath<SettingsLayer, T?>) -> SettingSource? { resolve(key)?.from.source }

    /// One line a setting: its name, value and where it came from (`sd3 generate --explain`).
    public func explanation() -> [String] {
        func row<T>(_ name: String, _ key: KeyPath<SettingsLayer, T?>, _ text: (T) -> String) -> String {
            guard let (value, layer) = resolve(key) else { return pad(name) + "(none: " + unsetMeaning(name) + ")" }
            return pad(name) + text(value) + "  ← " + layer.source.name + (layer.detail.map { " (\($0))" } ?? "")
        }
        return [
            row("prompt", \.prompt) { quoted($0) },
            row("negative prompt", \.negativePrompt) { quoted($0) },
            row("width", \.width) { "\($0)" },
            row("height", \.height) { "\($0)" },
            row("steps", \.steps) { "\($0)" },
            row("guidance", \.guidance) { "\($0)" },
            row("shift", \.shift) { "\($0)" },
            row("seed", \.seed) { "\($0)" },
            row("max sequence length", \.maxSequenceLength) { "\($0)" },
            row("scheduler", \.scheduler) { $0.rawValue },
            row("t5", \.t5) { $0.rawValue },
            row("precision", \.precision) { $0.rawValue },
            row("decoder", \.decoder) { $0.rawValue },
        ]
    }

    private func pad(_ name: String) -> String { name + String(repeating: " ", count: max(1, 21 - name.count)) }

    private func unsetMeaning(_ name: String) -> String {
        switch name {
        case "seed": return "a random one, printed and recorded"
        case "shift": return "the scheduler config's"
        case "prompt": return "give one"
        default: return "the model's"
        }
    }
}

private func quoted(_ text: String) -> String {
    let shown = text.count > 60 ? String(text.prefix(59)) + "…" : text
    return "\"" + shown.replacingOccurrences(of: "\n", with: "⏎") + "\""
}
