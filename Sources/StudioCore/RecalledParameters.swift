import Foundation
import ImageIO
import SD3

/// The generation parameters a PNG records, from whichever tool wrote it (peers.md §4): ours (`sd3-studio` JSON),
/// A1111/Forge and stable-diffusion.cpp (`parameters` infotext), ComfyUI (`prompt` API graph, else `workflow`),
/// InvokeAI (`invokeai_metadata`, or 2.x `sd-metadata`). Fields the file does not record are nil.
public struct RecalledParameters: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable {
        case sd3Studio = "sd3-studio"
        case a1111 = "A1111/Forge"
        case stableDiffusionCpp = "stable-diffusion.cpp"
        case comfyUI = "ComfyUI"
        case invokeAI = "InvokeAI"
        case invokeAILegacy = "InvokeAI 2.x"
    }

    public struct Pair: Sendable, Equatable, Codable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) { (self.key, self.value) = (key, value) }
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
    /// The rest of what the file records, in its order (A1111 keys such as `Version`, ComfyUI inputs, …).
    public var extra: [Pair] = []
    /// Our own PNGs: the exact parameters, T5 length, precision and skip-layer guidance included.
    public var metadata: ImageMetadata?

    public init(source: Source, prompt: String) { (self.source, self.prompt) = (source, prompt) }

    public init(_ m: ImageMetadata) {
        self.init(source: .sd3Studio, prompt: m.prompt)
        (negativePrompt, steps, guidanceScale, seed, width, height) = (m.negativePrompt, m.steps, m.guidanceScale, m.seed, m.width, m.height)
        (sampler, scheduler, shift, model, strength, metadata) = (m.scheduler == "flash" ? "Flash" : "Euler", "Simple", m.shift, m.model, m.strength, m)
        (variationSeed, variationStrength) = (m.variationSeed, m.variationStrength)
    }

    /// Reads `path`; a missing file, a non-PNG, or a PNG with no parameters we know is a one-line error.
    public static func read(_ path: String) throws(StoreError) -> RecalledParameters {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw StoreError("\(path): no such file") }
        guard !isFolder.boolValue else { throw StoreError("\(path): is a folder, not a PNG file") }
        let text: [(key: String, value: String)]
        do { text = try PNGFile.readText(path) } catch { throw StoreError(error.description) }
        return try parse(text, name: path)
    }

    /// The first format found, most exact first.
    public static func parse(_ chunks: [(key: String, value: String)], name: String) throws(StoreError) -> RecalledParameters {
        func chunk(_ key: String) -> String? { chunks.first { $0.key == key }.map { utf8Repaired($0.value) } }
        if let json = chunk("sd3-studio") {
            guard let m = try? JSONDecoder().decode(ImageMetadata.self, from: Data(json.utf8)) else {
                throw StoreError("\(name): its sd3-studio chunk is not valid sd3-studio JSON")
            }
            return RecalledParameters(m)
        }
        if let json = chunk("invokeai_metadata") { return try InvokeAIParameters.parse(json, name: name) }
        if let json = chunk("sd-metadata") { return try InvokeAIParameters.parseLegacy(json, name: name) }
        if let json = chunk("prompt") { return try ComfyUIParameters.parse(prompt: json, name: name) }
        if let json = chunk("workflow") { return try ComfyUIParameters.parse(workflow: json, name: name) }
        if let text = chunk("parameters") { return try A1111Parameters.parse(text, name: name) }
        let keys = chunks.map(\.key)
        throw StoreError("\(name): no generation parameters in this PNG" + (keys.isEmpty ? " (it has no text chunks)" : " (its text chunks: \(keys.joined(separator: ", ")))"))
    }

    /// stable-diffusion.cpp writes UTF-8 bytes into tEXt, which is Latin-1 by the PNG spec (peers.md §4): text
    /// whose code points are all bytes and which is valid UTF-8 as bytes is taken as UTF-8.
    static func utf8Repaired(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard scalars.contains(where: { $0.value >= 0x80 }), scalars.allSatisfy({ $0.value <= 0xFF }) else { return text }
        return String(validating: scalars.map { UInt8($0.value) }, as: UTF8.self) ?? text
    }

    /// `Key: value` lines for `sd3 recall`.
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
        }
        out += extra.map { "\($0.key): \($0.value)" }
        return out
    }

    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
}
