import Foundation
import RegularFiles
import SafeTensors

/// A model's preferred settings, from an optional `defaults.json` in its folder (the demo model has one:
/// it was trained at 64×64 with 32 T5 tokens, and SD3's pipeline attends to T5 padding, so the length matters).
public struct ModelDefaults: Codable, Sendable, Equatable {
    public var width: Int?
    public var height: Int?
    public var steps: Int?
    public var guidanceScale: Double?
    public var shift: Double?
    public var maxSequenceLength: Int?
    public var negativePrompt: String?

    enum CodingKeys: String, CodingKey {
        case width, height, steps, shift
        case guidanceScale = "guidance_scale", maxSequenceLength = "max_sequence_length", negativePrompt = "negative_prompt"
    }

    public init() {}

    /// What a model draws with when nothing else is said, as diffusers takes it: defaults.json's values where it has
    /// them; else width and height transformer.config.sample_size × vae_scale_factor (StableDiffusion3Pipeline's
    /// `default_sample_size * vae_scale_factor`) and the scheduler config's shift. The studio and `sd3 generate` both
    /// start from this.
    public static func resolved(_ source: ModelSource) throws -> ModelDefaults {
        var d = try read(model: source.path)
        if d.width == nil || d.height == nil {
            let side = try source.transformerConfig().sampleSize * source.vaeConfig().scaleFactor
            (d.width, d.height) = (d.width ?? side, d.height ?? side)
        }
        if d.shift == nil { d.shift = try source.schedulerConfig().shift }
        return d
    }

    /// The folder's defaults.json, or no defaults when there is none; a broken one is an error naming the file.
    public static func read(model path: String) throws -> ModelDefaults {
        let file = path + "/defaults.json"
        guard FileManager.default.fileExists(atPath: file) else { return ModelDefaults() }
        let data: Data
        do { data = Data(try RegularFile.contents(file, limit: ComponentFolder.configSizeLimit)) } catch {
            throw ModelError.invalidConfig(path: file, reason: error.reason)
        }
        do {
            return try JSONDecoder().decode(ModelDefaults.self, from: data)
        } catch {
            throw ModelError.invalidConfig(path: file, reason: "not a valid defaults file (\(error))")
        }
    }
}

/// The small SD3-architecture model shipped in the repository (models/sd3-demo), used when no model is given.
public enum DemoModel {
    public static let folderName = "models/sd3-demo"

    /// `$SD3_DEMO_MODEL`, else `models/sd3-demo` in the executable's folder or any folder above it (a build in
    /// `.build/<triple>/release/` finds the repository's copy), else in the current folder.
    public static func locate(executable: String = CommandLine.arguments.first ?? "") -> String? {
        let fm = FileManager.default
        func valid(_ path: String) -> Bool { fm.fileExists(atPath: path + "/model_index.json") }
        if let path = ProcessInfo.processInfo.environment["SD3_DEMO_MODEL"], valid(path) { return path }
        var folder = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = folder.appendingPathComponent(folderName).path
            if valid(candidate) { return candidate }
            folder.deleteLastPathComponent()
        }
        let local = fm.currentDirectoryPath + "/" + folderName
        return valid(local) ? local : nil
    }
}
