import Foundation

/// The generation parameters a PNG records, from whichever tool wrote it (peers.md §4), with the source the reader is
/// sure of and what it could not read as warnings. Fields the file does not record are nil.
public struct RecalledParameters: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable {
        case sd3Studio = "sd3-studio"
        case a1111 = "A1111/Forge"
        case stableDiffusionCpp = "stable-diffusion.cpp"
        case comfyUI = "ComfyUI"
        case invokeAI = "InvokeAI"
        case invokeAILegacy = "InvokeAI 2.x"
        case fooocus = "Fooocus"
        case novelAI = "NovelAI"
        case swarmUI = "SwarmUI"
        case drawThings = "Draw Things"
    }

    public struct Pair: Sendable, Equatable, Codable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) { (self.key, self.value) = (key, value) }
    }

    /// A LoRA the file names: A1111's `<lora:NAME:W>` prompt tags (hash from `Lora hashes`), a ComfyUI LoraLoader, …
    public struct Lora: Sendable, Equatable, Codable {
        public var name: String
        public var strength: Double
        public var hash: String?
        public init(name: String, strength: Double, hash: String? = nil) { (self.name, self.strength, self.hash) = (name, strength, hash) }
    }

    public var source: Source
    public var prompt: String
    public var negativePrompt: String?
    public var steps: Int?
    public var guidanceScale: Double?
    public var seed: UInt64?
    public var width: Int?
    public var height: Int?
    public var sampler: String?
    public var scheduler: String?
    public var shift: Double?
    public var model: String?
    public var strength: Double?
    /// A1111's `Variation seed` and `Variation seed strength` (ours too).
    public var variationSeed: UInt64?
    public var variationStrength: Double?
    public var loras: [Lora] = []
    /// The rest of what the file records, in its order (A1111 keys such as `Version`, ComfyUI inputs, …).
    public var extra: [Pair] = []
    /// What the reader saw and did not recall ("4 other prompts in this ComfyUI graph"), for `sd3 recall` and the studio.
    public var warnings: [String] = []
    /// Our own PNGs: the exact parameters, T5 length, precision and skip-layer guidance included.
    public var metadata: ImageMetadata?

    public init(source: Source, prompt: String) { (self.source, self.prompt) = (source, prompt) }

    public init(_ m: ImageMetadata) {
        self.init(source: .sd3Studio, prompt: m.prompt)
        (negativePrompt, steps, guidanceScale, seed, width, height) = (m.negativePrompt, m.steps, m.guidanceScale, m.seed, m.width, m.height)
        (sampler, scheduler, shift, model, strength, metadata) = (m.scheduler == "flash" ? "Flash" : "Euler", "Simple", m.shift, m.model, m.strength, m)
        (variationSeed, variationStrength) = (m.variationSeed, m.variationStrength)
        loras = (m.loras ?? []).map { Lora(name: $0.name, strength: $0.strength, hash: $0.hash) }
    }

    /// `Key: value` lines for `sd3 recall`; warnings are `warnings`, printed apart.
    public var lines: [String] {
        var out = ["Source: \(source.rawValue)", "Prompt: \(prompt)"]
        func add(_ key: String, _ value: String?) { if let value { out.append("\(key): \(value)") } }
        add("Negative prompt", negativePrompt)
        add("Steps", steps.map(String.init))
        add("CFG scale", guidanceScale.map(Self.number))
        add("Seed", seed.map(String.init))
        if let width, let height { out.append("Size: \(width)x\(height)") }
        add("Sampler", sampler)
        add("Scheduler", scheduler)
        add("Shift", shift.map(Self.number))
        add("Model", model)
        add("Denoising strength", strength.map(Self.number))
        add("Variation seed", variationSeed.map(String.init))
        add("Variation seed strength", variationStrength.map(Self.number))
        if let m = metadata {
            out.append("T5: " + (m.t5 ? "on\(m.t5Weights.map { " " + $0 } ?? ""), max \(m.maxSequenceLength)" : "off"))
            out.append("Precision: \(m.precision)")
            add("Model path", m.modelPath)
            add("Skip layers", m.skipLayers.map { $0.map(String.init).joined(separator: ",") })
            add("SLG scale", m.skipLayerScale.map(Self.number))
            add("LoRAs", m.loras.map { $0.map { "\($0.name) \(Self.number($0.strength)) (\($0.hash))" }.joined(separator: ", ") + " \(m.loraMode ?? "merged")" })
            add("Seconds", m.seconds.map { String(format: "%.2f", $0) })
            out.append("Version: \(m.version)")
        } else if !loras.isEmpty {
            out.append("LoRAs: " + loras.map { "\($0.name) \(Self.number($0.strength))" + ($0.hash.map { " (\($0))" } ?? "") }.joined(separator: ", "))
        }
        out += extra.map { "\($0.key): \($0.value)" }
        return out
    }

    /// Shortest round-trip text, 7 rather than 7.0 as Python prints A1111's whole floats.
    public static func number(_ x: Double) -> String { ImageMetadata.number(x) }
}
