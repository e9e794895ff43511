import Foundation

/// What a generated PNG records about itself: A1111's `parameters` text (peers.md §4; A1111
/// modules/processing.py `create_infotext`) for other tools, and our own JSON for exact reproduction.
public struct ImageMetadata: Sendable, Codable, Equatable {
    public var prompt: String
    public var negativePrompt: String
    public var width: Int
    public var height: Int
    public var steps: Int
    public var guidanceScale: Double
    public var seed: UInt64
    /// A1111's variation seed and its strength, recorded when the strength is not 0 (A1111 omits both then too).
    public var variationSeed: UInt64?
    public var variationStrength: Double?
    public var maxSequenceLength: Int
    public var t5: Bool
    /// "int8" when T5's projections were int8 (`--t5 int8`); nil: as `precision`.
    public var t5Weights: String?
    public var shift: Double
    public var precision: String
    public var model: String
    /// The model folder as given, so `--params-from` can find it again.
    public var modelPath: String?
    public var strength: Double?
    /// SHA-256 of the init image's pixels (RGB, row-major), for img2img.
    public var initImageHash: String?
    public var skipLayers: [Int]?
    public var skipLayerScale: Double?
    public var skipLayerStart: Double?
    public var skipLayerStop: Double?
    /// The LoRAs applied, in order (nil: none), and how: "merged" (`sd3 generate`) or "run-time" (the studio). The two
    /// round differently, so `--params-from` applies them the recorded way to give the same pixels.
    public var loras: [LoraRecord]?
    public var loraMode: String?
    /// "flash" for Flash-SD3's scheduler (`--scheduler flash`); nil: the model's FlowMatchEulerDiscreteScheduler.
    public var scheduler: String?
    /// The recipe the settings came from (`--recipe NAME`), nil when none.
    public var recipe: String?
    /// "taesd" when TAESD3 decoded the image (a draft); nil: the VAE.
    public var decoder: String?
    public var seconds: Double?
    public var version: String
    /// Where the image was made when not on this machine: "comfyui://HOST:PORT" (nil: the local engine).
    public var backend: String?
    /// The server's file names for the parts of the model (`model` is the server's checkpoint or diffusion model).
    public var remote: RemoteFiles?

    /// The files a ComfyUI job named on its server, so `--params-from` can send the same job again.
    public struct RemoteFiles: Sendable, Codable, Equatable {
        /// "checkpoints" or "diffusion_models".
        public var modelFolder: String
        public var clipL: String?
        public var clipG: String?
        public var t5: String?
        public var vae: String?
        public init(modelFolder: String, clipL: String? = nil, clipG: String? = nil, t5: String? = nil, vae: String? = nil) {
            (self.modelFolder, self.clipL, self.clipG, self.t5, self.vae) = (modelFolder, clipL, clipG, t5, vae)
        }
    }

    /// One LoRA as recorded: its file name without extension, strength, A1111 short hash (`LoraFile.shortHash`) and
    /// the path it was read from (so a recall can find it again; nil in files written before it was recorded).
    public struct LoraRecord: Sendable, Codable, Equatable {
        public var name: String
        public var strength: Double
        public var hash: String
        public var path: String?
        public init(name: String, strength: Double, hash: String, path: String? = nil) {
            (self.name, self.strength, self.hash, self.path) = (name, strength, hash, path)
        }
    }

    /// The fields every record has; the rest start as nil.
    public init(prompt: String, negativePrompt: String, width: Int, height: Int, steps: Int, guidanceScale: Double, seed: UInt64,
                maxSequenceLength: Int, t5: Bool, shift: Double, precision: String, model: String, version: String) {
        (self.prompt, self.negativePrompt, self.width, self.height, self.steps) = (prompt, negativePrompt, width, height, steps)
        (self.guidanceScale, self.seed, self.maxSequenceLength, self.t5) = (guidanceScale, seed, maxSequenceLength, t5)
        (self.shift, self.precision, self.model, self.version) = (shift, precision, model, version)
    }

    /// The A1111 infotext: prompt, `Negative prompt:` line when there is one, then `Key: value` pairs.
    public var a1111Parameters: String {
        var pairs: [(String, String)] = [("Steps", "\(steps)"), ("Sampler", scheduler == "flash" ? "Flash" : "Euler"), ("Schedule type", "Simple"),
                                         ("CFG scale", Self.number(guidanceScale)), ("Seed", "\(seed)"), ("Size", "\(width)x\(height)"),
                                         ("Model", model)]
        if let variationSeed, let variationStrength {
            pairs.append(("Variation seed", "\(variationSeed)"))
            pairs.append(("Variation seed strength", Self.number(variationStrength)))
        }
        if let strength { pairs.append(("Denoising strength", Self.number(strength))) }
        if let initImageHash { pairs.append(("Init image hash", String(initImageHash.prefix(8)))) }
        pairs.append(("RNG", "CPU"))
        pairs.append(("Shift", Self.number(shift)))
        pairs.append(("T5", t5 ? "on\(t5Weights.map { " " + $0 } ?? ""), max \(maxSequenceLength)" : "off"))
        if let skipLayers { pairs.append(("Skip layers", skipLayers.map(String.init).joined(separator: ", "))) }
        if let skipLayerScale { pairs.append(("SLG scale", Self.number(skipLayerScale))) }
        // A1111's key (extensions-builtin/Lora/scripts/lora_script.py): "name: hash" per LoRA; the strengths are the tags'.
        if let loras, !loras.isEmpty { pairs.append(("Lora hashes", loras.map { "\($0.name): \($0.hash)" }.joined(separator: ", "))) }
        if let recipe { pairs.append(("Recipe", recipe)) }
        if let backend { pairs.append(("Backend", backend.replacingOccurrences(of: "://", with: "@"))) }
        pairs.append(("Version", version))
        let line = pairs.map { "\($0.0): \(Self.quote($0.1))" }.joined(separator: ", ")
        let negative = negativePrompt.isEmpty ? "" : "\nNegative prompt: \(negativePrompt)"
        // LoRAs as A1111/Forge write them, `<lora:NAME:W>` at the end of the prompt, so their "send to txt2img" applies
        // them again. An empty prompt stays an empty first line (a reader that finds `Steps:` first takes it for the
        // prompt); only the end is trimmed.
        let tags = (loras ?? []).map { " <lora:\($0.name):\(Self.number($0.strength))>" }.joined()
        let first = prompt.isEmpty ? String(tags.dropFirst()) : prompt + tags
        var text = "\(first)\(negative)\n\(line)"
        while let last = text.unicodeScalars.last, last.properties.isWhitespace { text.unicodeScalars.removeLast() }
        return text
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The record `json` wrote (from a PNG chunk, the history database or a latents file); nil when `text` is not one.
    public init?(json text: String) {
        guard let m = try? JSONDecoder().decode(ImageMetadata.self, from: Data(text.utf8)) else { return nil }
        self = m
    }

    /// The PNG text chunks: `parameters` (A1111) and `sd3-studio` (JSON).
    public var pngText: [(key: String, value: String)] { [("parameters", a1111Parameters), ("sd3-studio", json)] }

    /// A1111's `quote`: values with `,`, `:` or a newline become JSON strings.
    static func quote(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == ":" || $0 == "\n" }) else { return value }
        let data = (try? JSONEncoder().encode(value)) ?? Data()
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
    }

    /// 7 rather than 7.0, as Python prints A1111's floats that are whole; otherwise the shortest text that reads back
    /// as the same double (Swift's `description`, as Python's `repr`): 0.8700000000000001 stays that.
    public static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }
}
