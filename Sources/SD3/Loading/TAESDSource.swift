import Foundation
import SafeTensors
import Tensors

/// Where a TAESD3 (madebyollin/taesd3) is and how it is stored: a diffusers folder (`config.json` +
/// `diffusion_pytorch_model.safetensors`), or taesd.py's single files (`taesd3_decoder.safetensors`, and beside it
/// `taesd3_encoder.safetensors` when there is one), as ComfyUI, A1111 and stable-diffusion.cpp use them.
public struct TAESDSource: Sendable, Equatable {
    public enum Layout: Sendable, Equatable {
        case diffusers(folder: String)
        case singleFiles(decoder: String, encoder: String?)
    }

    /// What was given or found (a folder or the decoder file).
    public let path: String
    public let layout: Layout

    public static let repo = "madebyollin/taesd3"
    static let decoderFile = "taesd3_decoder.safetensors", encoderFile = "taesd3_encoder.safetensors"
    static let weightsFile = "diffusion_pytorch_model.safetensors"

    /// `path`: a diffusers folder, a folder holding the single files, or the decoder file itself.
    public init(_ path: String) throws {
        self.path = path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw ModelError.missingFile(path: path) }
        if isFolder.boolValue {
            if FileManager.default.fileExists(atPath: path + "/config.json") {
                layout = .diffusers(folder: path)
            } else if FileManager.default.fileExists(atPath: path + "/" + Self.decoderFile) {
                layout = .singleFiles(decoder: path + "/" + Self.decoderFile, encoder: Self.existing(path + "/" + Self.encoderFile))
            } else {
                throw ModelError.unsupported(path: path, reason: "not a TAESD3 folder: neither config.json (diffusers) nor \(Self.decoderFile)")
            }
            return
        }
        let file = URL(fileURLWithPath: path)
        let name = file.lastPathComponent
        let sibling = name.contains("decoder")
            ? file.deletingLastPathComponent().appendingPathComponent(name.replacingOccurrences(of: "decoder", with: "encoder")).path : nil
        layout = .singleFiles(decoder: path, encoder: sibling.flatMap(Self.existing))
    }

    static func existing(_ path: String) -> String? { FileManager.default.fileExists(atPath: path) ? path : nil }

    /// The first TAESD3 in the usual places: `<models folder>/taesd3/`, `<models folder>/taesd3_decoder.safetensors`,
    /// ComfyUI's `<models folder>/vae_approx/taesd3_decoder.safetensors`, then the Hugging Face cache's madebyollin/taesd3.
    public static func locate(modelsFolder: String, cache: HuggingFaceCache) -> TAESDSource? {
        let candidates = [modelsFolder + "/taesd3", modelsFolder + "/" + decoderFile, modelsFolder + "/vae_approx/" + decoderFile]
            + (cache.snapshot(repo: repo).map { [$0] } ?? [])
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate) {
            if let found = try? TAESDSource(candidate) { return found }
        }
        return nil
    }

    /// The TAESD3 to use: `flag` (`--taesd`), else `configured` (config `taesd`), each as written (a wrong path is an
    /// error when the pipeline loads), else the first found by `locate` in the models folder or the cache; nil: none.
    public static func choose(flag: String?, configured: String?, environment: [String: String]) -> String? {
        if let given = flag ?? configured { return given }
        return locate(modelsFolder: ModelCatalog.modelsFolder(environment: environment), cache: HuggingFaceCache(environment: environment))?.path
    }

    /// File names that are TAESD weights, not SD3 models (the model list skips them).
    public static func isTAESDFile(_ name: String) -> Bool {
        name.hasPrefix("taesd") && (name.hasSuffix("_decoder.safetensors") || name.hasSuffix("_encoder.safetensors"))
    }

    /// Loads strictly: every weight by its key and shape, and no weight left over. `withEncoder` false reads the
    /// decoder alone.
    public func load(precision: Precision, withEncoder: Bool = false) throws -> AutoencoderTiny {
        switch layout {
        case let .diffusers(folder):
            let component = try ComponentFolder(folder)
            let config = try component.config(AutoencoderTinyConfig.self)
            let weights = try component.weights()
            if !withEncoder { for key in weights.unusedKeys where key.hasPrefix("encoder.") { weights.markUsed(key) } }
            let model = try AutoencoderTiny(config: config, encoder: withEncoder ? (weights.scope("encoder.layers"), 0) : nil,
                                            decoder: (weights.scope("decoder.layers"), 0), precision: precision, source: folder)
            try weights.requireAllUsed()
            return model
        case let .singleFiles(decoderPath, encoderPath):
            let decoder = try WeightStore(paths: [decoderPath])
            if !decoder.contains("1.weight") && decoder.contains("0.weight") {
                throw ModelError.unsupported(path: decoderPath, reason: "this is TAESD's encoder; give the decoder (\(Self.decoderFile))")
            }
            // taesd.py's Decoder: Clamp (no weights), conv(latent, width): its first conv is layer 1.
            guard let first = decoder.shape(of: "1.weight"), first.count == 4 else {
                throw ModelError.unsupported(path: decoderPath, reason: "no 4-D '1.weight' (taesd.py's first decoder conv): not a TAESD decoder")
            }
            var config = AutoencoderTinyConfig.taesd3(channels: first[0])
            config.latentChannels = first[1]
            if withEncoder && encoderPath == nil {
                throw ModelError.missingFile(path: URL(fileURLWithPath: decoderPath).deletingLastPathComponent().appendingPathComponent(Self.encoderFile).path)
            }
            let encoder = try withEncoder ? encoderPath.map { try WeightStore(paths: [$0]) } : nil
            let model = try AutoencoderTiny(config: config, encoder: encoder.map { ($0.scope(""), 0) }, decoder: (decoder.scope(""), 1),
                                            precision: precision, source: decoderPath)
            try decoder.requireAllUsed()
            try encoder?.requireAllUsed()
            return model
        }
    }
}
