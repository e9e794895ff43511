import Foundation
import RegularFiles
import SafeTensors

/// What a single safetensors file holds, decided from its header (key prefixes and shapes), never its name:
/// which SD3 components and under which prefix, or which other model family it belongs to.
public struct SingleFileCheckpoint: Sendable {
    public struct Part: Sendable {
        public let file: SafeTensorsFile
        public let prefix: String
    }

    public let path: String
    public let parts: [SD3Component: Part]

    /// Reads `path`'s header. `role`: the component a separate file was given as (`--clip-l` …); its keys may
    /// then carry no prefix (ComfyUI's text_encoders/ files).
    public init(path: String, role: SD3Component? = nil) throws {
        let file = try SafeTensorsFile(path: path)
        self.path = path
        var parts: [SD3Component: Part] = [:]
        let names = file.names
        for (component, prefix) in SingleFileKeyMap.prefixes where names.contains(where: { $0.hasPrefix(prefix) }) {
            parts[component] = Part(file: file, prefix: prefix)
        }
        if parts.isEmpty, let bare = Self.bareComponent(file, role: role) {
            parts[bare] = Part(file: file, prefix: "")
        }
        if parts[.vae] == nil, names.contains("vae.decoder.conv_in.weight") { parts[.vae] = Part(file: file, prefix: "vae.") }
        // A transformer-only MMDiT file with model.diffusion_model. stripped.
        if parts.isEmpty, names.contains("x_embedder.proj.weight"), names.contains(where: { $0.hasPrefix("joint_blocks.") }) {
            parts[.transformer] = Part(file: file, prefix: "")
        }
        guard !parts.isEmpty else { throw SingleFileError.notSD3(path: path, family: Self.family(names)) }
        if let role, parts[role] == nil {
            throw SingleFileError.wrongRole(path: path, flag: role, found: parts.keys.map(\.label).sorted().joined(separator: ", "))
        }
        if let part = parts[.transformer], !names.contains(part.prefix + "x_embedder.proj.weight") {
            throw SingleFileError.notSD3(path: path, family: Self.family(names))
        }
        self.parts = parts
    }

    /// A text encoder stored without prefix: transformers CLIP / OpenCLIP / T5 names. The width tells CLIP-L
    /// (768) from CLIP-G (1280); other widths take the role the file was given as.
    static func bareComponent(_ file: SafeTensorsFile, role: SD3Component?) -> SD3Component? {
        let names = Set(file.names)
        if names.contains("shared.weight") || names.contains("encoder.block.0.layer.0.SelfAttention.q.weight") { return .textEncoder3 }
        let width = file.info("text_model.embeddings.position_embedding.weight")?.shape.last ?? file.info("positional_embedding")?.shape.last
        guard let width else { return nil }
        switch width {
        case 768: return .textEncoder
        case 1280: return .textEncoder2
        default: return role == .textEncoder2 ? .textEncoder2 : .textEncoder
        }
    }

    /// Names the family of a checkpoint that is not SD3, from the keys each family's files carry
    /// (diffusers' `CHECKPOINT_KEY_NAMES` / `infer_diffusers_model_type`).
    static func family(_ names: [String]) -> String {
        func has(_ fragment: String) -> Bool { names.contains { $0.contains(fragment) } }
        if has("double_blocks.") && has("img_attn") { return "a FLUX checkpoint" }
        if has("single_stream_modulation") { return "a FLUX.2 checkpoint" }
        if has("conditioner.embedders.") { return "an SDXL checkpoint" }
        if has("cond_stage_model.model.") { return "a Stable Diffusion 2.x checkpoint" }
        if has("model.diffusion_model.input_blocks.") || has("cond_stage_model.transformer.") { return "a Stable Diffusion 1.x checkpoint" }
        if has("transformer_blocks.0.attn.to_q.weight") && has("pos_embed.proj.weight") {
            return "a diffusers-format SD3 transformer file (open the whole diffusers folder instead)"
        }
        if has("encoder.down.") && !has("joint_blocks") { return "a VAE alone" }
        let sample = names.sorted().prefix(2).map { "'\($0)'" }.joined(separator: ", ")
        return "not a known model layout (keys like \(sample))"
    }

    /// The diffusers-named weights of one component.
    public func weights(_ component: SD3Component) throws -> MappedWeights {
        guard let part = parts[component] else { throw SingleFileError.missingComponent(path: path, component: component) }
        return try MappedWeights(StoredTensor.all(in: part.file, prefix: part.prefix), map: SingleFileKeyMap.map(for: component),
                                 source: path)
    }
}

public enum SingleFileError: Error, Equatable, CustomStringConvertible {
    case notSD3(path: String, family: String)
    case wrongRole(path: String, flag: SD3Component, found: String)
    case missingComponent(path: String, component: SD3Component)
    case missingEncoder(path: String, component: SD3Component)
    case cannotDerive(path: String, component: SD3Component, reason: String)

    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .notSD3(path, family): return "\(path): not an SD3/SD3.5 checkpoint: \(family)"
        case let .wrongRole(path, flag, found):
            return "\(path): given as --\(TextEncoderKind(flag)?.rawValue ?? flag.rawValue) but it holds \(found)"
        case let .missingComponent(path, component): return "\(path): has no \(component.label) weights"
        case let .missingEncoder(path, component):
            let flag = TextEncoderKind(component)?.rawValue ?? component.rawValue
            let hint = component == .textEncoder3 ? ", or run with --no-t5 (lower quality on text-heavy prompts)" : ""
            return "\(path): has no \(component.label) weights; give them with --\(flag) FILE (e.g. ComfyUI's text_encoders/\(Self.fileName(component)))\(hint)"
        case let .cannotDerive(path, component, reason): return "\(path): cannot read the \(component.label) configuration from the header: \(reason)"
        }
    }

    static func fileName(_ component: SD3Component) -> String {
        switch component {
        case .textEncoder: return "clip_l.safetensors"
        case .textEncoder2: return "clip_g.safetensors"
        default: return "t5xxl_fp16.safetensors"
        }
    }
}

extension TextEncoderKind {
    init?(_ component: SD3Component) {
        switch component {
        case .textEncoder: self = .clipL
        case .textEncoder2: self = .clipG
        case .textEncoder3: self = .t5
        default: return nil
        }
    }
}
