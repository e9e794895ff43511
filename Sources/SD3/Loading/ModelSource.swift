import Foundation
import SafeTensors
import Tokenizers

/// Where a model's configs, weights and tokenizers come from: a diffusers folder, or Stability single-file
/// checkpoints (one all-in-one file, or a file plus separate CLIP-L / CLIP-G / T5 files).
/// `--model` may name either, or a Hugging Face repo id found in the local cache.
public struct ModelSource: Sendable {
    public enum Layout: Sendable {
        case diffusers(folder: String)
        /// Each component's checkpoint; `configFolder` is a diffusers folder whose configs and tokenizers are
        /// used with these weights (diffusers' `from_single_file(config=…)`); without it configs come from shapes.
        case singleFile(parts: [SD3Component: SingleFileCheckpoint], configFolder: String?)
    }

    /// The `--model` text as given, and where it led.
    public let name: String
    public let path: String
    public let layout: Layout
    let cache: HuggingFaceCache
    /// LoRAs merged into every component's weights as they are fetched (`LoraWeights`, merged mode), if any.
    public var mergedLoras: [(file: LoraFile, strength: Double)] = []

    /// Separate files for the encoders a single file may lack.
    public struct Extras: Sendable, Equatable {
        public var clipL: String?, clipG: String?, t5: String?
        /// A diffusers folder (or cached repo id) supplying configs and tokenizers for single files.
        public var config: String?
        public init(clipL: String? = nil, clipG: String? = nil, t5: String? = nil, config: String? = nil) {
            self.clipL = clipL; self.clipG = clipG; self.t5 = t5; self.config = config
        }
        public var isEmpty: Bool { self == Extras() }
    }

    public init(_ model: String, extras: Extras = Extras(), cache: HuggingFaceCache = HuggingFaceCache()) throws {
        name = model
        self.cache = cache
        let resolved = try Self.resolve(model, cache: cache)
        path = resolved
        var isFolder: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: resolved, isDirectory: &isFolder)  // resolve() found it; only the kind is asked
        if isFolder.boolValue {
            guard extras.clipL == nil, extras.clipG == nil, extras.t5 == nil else {
                throw ModelSourceError.extrasNeedSingleFile(path: resolved)
            }
            guard FileManager.default.fileExists(atPath: resolved + "/model_index.json") else {
                throw ModelError.missingFile(path: resolved + "/model_index.json")
            }
            layout = .diffusers(folder: resolved)
            return
        }
        let main = try SingleFileCheckpoint(path: resolved)
        guard main.parts[.transformer] != nil else { throw SingleFileError.missingComponent(path: resolved, component: .transformer) }
        var parts = main.parts.mapValues { _ in main }
        for (file, role) in [(extras.clipL, SD3Component.textEncoder), (extras.clipG, .textEncoder2), (extras.t5, .textEncoder3)] {
            guard let file else { continue }
            parts[role] = try SingleFileCheckpoint(path: file, role: role)
        }
        // Stability's repos keep the separate encoders in text_encoders/ beside the checkpoint.
        let folder = URL(fileURLWithPath: resolved).deletingLastPathComponent().path + "/text_encoders"
        for (component, found) in Self.encoders(in: folder) where parts[component] == nil { parts[component] = found }
        let config = try extras.config.map { try Self.resolve($0, cache: cache) }
        layout = .singleFile(parts: parts, configFolder: config)
    }

    /// The text encoder files in `folder`, by their headers; of two T5 files the larger (fp16 before fp8) wins.
    static func encoders(in folder: String) -> [SD3Component: SingleFileCheckpoint] {
        var found: [SD3Component: (SingleFileCheckpoint, Int)] = [:]
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() where name.hasSuffix(".safetensors") {
            guard let checkpoint = try? SingleFileCheckpoint(path: folder + "/" + name), checkpoint.parts.count == 1,
                  let (component, part) = checkpoint.parts.first, component != .transformer, component != .vae else { continue }
            if let existing = found[component], existing.1 >= part.file.fileSize { continue }
            found[component] = (checkpoint, part.file.fileSize)
        }
        return found.mapValues(\.0)
    }

    /// A path on disk as is; otherwise "ORG/NAME" looked up in the Hugging Face cache (a diffusers snapshot folder,
    /// or the most complete checkpoint in it).
    public static func resolve(_ model: String, cache: HuggingFaceCache = HuggingFaceCache()) throws -> String {
        if FileManager.default.fileExists(atPath: model) { return model }
        guard HuggingFaceCache.isRepoID(model) else { throw ModelSourceError.notFound(model) }
        guard let snapshot = cache.snapshot(repo: model) else { throw ModelSourceError.notCached(repo: model, roots: cache.roots) }
        if FileManager.default.fileExists(atPath: snapshot + "/model_index.json") { return snapshot }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: snapshot)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        // Several checkpoints (sd3_medium.safetensors, …_incl_clips…, …_t5xxlfp16…): the most complete, then the larger.
        let ranked = files.compactMap { name -> (String, Int, Int)? in
            guard let checkpoint = try? SingleFileCheckpoint(path: snapshot + "/" + name), checkpoint.parts[.transformer] != nil else { return nil }
            return (name, checkpoint.parts.count, checkpoint.parts[.transformer]!.file.fileSize)
        }
        guard let best = ranked.max(by: { ($0.1, $0.2) < ($1.1, $1.2) }) else {
            throw ModelSourceError.ambiguousRepo(repo: model, snapshot: snapshot, files: files)
        }
        return snapshot + "/" + best.0
    }

    public var isSingleFile: Bool { if case .singleFile = layout { true } else { false } }

    /// Whether the source has weights for `component`.
    public func has(_ component: SD3Component) -> Bool {
        switch layout {
        case let .diffusers(folder): return FileManager.default.fileExists(atPath: folder + "/" + component.rawValue)
        case let .singleFile(parts, _): return parts[component] != nil
        }
    }

    /// The weights of a component under diffusers names.
    public func weights(_ component: SD3Component) throws -> any WeightProvider {
        let base = try baseWeights(component)
        return mergedLoras.isEmpty ? base : LoraWeights(base: base, component: component, loras: mergedLoras)
    }

    func baseWeights(_ component: SD3Component) throws -> any WeightProvider {
        switch layout {
        case let .diffusers(folder): return try ComponentFolder(folder + "/" + component.rawValue).weights()
        case let .singleFile(parts, _):
            guard let part = parts[component] else { throw missing(component) }
            return try part.weights(component)
        }
    }

    func missing(_ component: SD3Component) -> Error {
        component == .transformer || component == .vae ? SingleFileError.missingComponent(path: path, component: component)
            : SingleFileError.missingEncoder(path: path, component: component)
    }

    /// A component's config: its config.json, else read from the checkpoint's shapes; checked either way.
    func config<T: Decodable & CheckedConfig>(_ component: SD3Component, _ type: T.Type, derive: (MappedWeights) throws -> T) throws -> T {
        switch layout {
        case let .diffusers(folder): return try ComponentFolder(folder + "/" + component.rawValue).config(type)
        case let .singleFile(parts, configFolder):
            if let configFolder { return try ComponentFolder(configFolder + "/" + component.rawValue).config(type) }
            guard let part = parts[component] else { throw missing(component) }
            let derived = try derive(try part.weights(component))
            if let problem = derived.problem {
                // What shapes cannot tell is SD3's (HeaderConfigs): a model that differs needs its own configs.
                throw SingleFileError.cannotDerive(path: part.path, component: component,
                                                   reason: problem + " (SD3's value where the shapes cannot tell: give the model's configs with --config-from)")
            }
            return derived
        }
    }

    public func transformerConfig() throws -> SD3TransformerConfig { try config(.transformer, SD3TransformerConfig.self, derive: HeaderConfigs.transformer) }
    public func vaeConfig() throws -> AutoencoderKLConfig { try config(.vae, AutoencoderKLConfig.self, derive: HeaderConfigs.vae) }
    public func clipConfig(_ component: SD3Component) throws -> CLIPTextConfig {
        try config(component, CLIPTextConfig.self) { try HeaderConfigs.clip($0, component) }
    }
    public func t5Config() throws -> T5Config { try config(.textEncoder3, T5Config.self, derive: HeaderConfigs.t5) }

    /// The scheduler config: the folder's, else SD3's (FlowMatchEulerDiscreteScheduler, shift 3.0).
    public func schedulerConfig() throws -> FlowMatchEulerDiscreteScheduler.Config {
        let folder: String?
        switch layout {
        case let .diffusers(f): folder = f
        case let .singleFile(_, configFolder): folder = configFolder
        }
        guard let folder else { return FlowMatchEulerDiscreteScheduler.Config(shift: 3.0) }
        return try ComponentFolder(folder + "/scheduler").config(FlowMatchEulerDiscreteScheduler.Config.self, file: "scheduler_config.json")
    }

    /// The tokenizer folders: the diffusers folder's (or the config folder's); for single files `tokenizer*/` folders
    /// beside the checkpoint or the SD3 tokenizers of a cached diffusers repo, else (clipL, clipG nil) the CLIP
    /// vocabulary shipped with the app; T5's from spiece.model beside a checkpoint or in the cache.
    public func tokenizerFolders(useT5: Bool) throws -> (clipL: URL?, clipG: URL?, t5: URL?) {
        func folders(_ base: String) -> (URL?, URL?, URL?) {
            let url = URL(fileURLWithPath: base)
            return (url.appendingPathComponent("tokenizer"), url.appendingPathComponent("tokenizer_2"),
                    useT5 ? url.appendingPathComponent("tokenizer_3") : nil)
        }
        switch layout {
        case let .diffusers(folder): return folders(folder)
        case let .singleFile(parts, configFolder):
            if let configFolder { return folders(configFolder) }
            let beside = parts.values.map { URL(fileURLWithPath: $0.path).deletingLastPathComponent().path }
            var candidates = beside
            candidates += TokenizerSearch.sd3Repos.compactMap { cache.snapshot(repo: $0) }
            let base = candidates.first(where: { TokenizerSearch.hasCLIP($0) })
            var t5: URL?
            if useT5 {
                let t5Candidates = beside.flatMap { [$0 + "/tokenizer_3", $0] } + candidates.map { $0 + "/tokenizer_3" }
                    + TokenizerSearch.t5Repos.compactMap { cache.snapshot(repo: $0) }
                guard let found = t5Candidates.first(where: TokenizerSearch.hasT5) else {
                    throw ModelSourceError.missingTokenizer(path: path, what: "T5", searched: t5Candidates, hint: TokenizerSearch.t5Hint)
                }
                t5 = URL(fileURLWithPath: found)
            }
            guard let base else { return (nil, nil, t5) }
            let (l, g, _) = folders(base)
            return (l, g, t5)
        }
    }

    public func tokenizers(useT5: Bool) throws -> PromptTokenizers {
        let folders = try tokenizerFolders(useT5: useT5)
        return try PromptTokenizers(clipL: folders.clipL, clipG: folders.clipG, t5: folders.t5)
    }
}

/// Where single files' tokenizers are looked for.
enum TokenizerSearch {
    static let sd3Repos = ["stabilityai/stable-diffusion-3-medium-diffusers", "stabilityai/stable-diffusion-3.5-medium",
                           "stabilityai/stable-diffusion-3.5-large", "stabilityai/stable-diffusion-3.5-large-turbo"]
    static let t5Repos = ["google/t5-v1_1-xxl", "google/t5-v1_1-xl", "google/t5-v1_1-large", "google/t5-v1_1-base"]
    static let t5Hint = "put T5's spiece.model (from google/t5-v1_1-xxl) or a tokenizer_3/ folder beside the checkpoint, or run with --no-t5"

    static func hasCLIP(_ base: String) -> Bool {
        ["tokenizer", "tokenizer_2"].allSatisfy { FileManager.default.fileExists(atPath: base + "/" + $0 + "/vocab.json") }
    }

    static func hasT5(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: folder + "/spiece.model") || FileManager.default.fileExists(atPath: folder + "/tokenizer.json")
            && !FileManager.default.fileExists(atPath: folder + "/vocab.json")
    }
}

public enum ModelSourceError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    case notCached(repo: String, roots: [String])
    case ambiguousRepo(repo: String, snapshot: String, files: [String])
    case extrasNeedSingleFile(path: String)
    case missingTokenizer(path: String, what: String, searched: [String], hint: String)
    case notSingleFile(path: String)
    case outputExists(path: String)

    public var description: String {
        switch self {
        case let .notFound(model): return "\(model): no such file or folder (and not an ORG/NAME Hugging Face repo id)"
        case let .notCached(repo, roots):
            return "\(repo): not in the Hugging Face cache (looked in \(roots.joined(separator: ", "))); nothing is downloaded: fetch it with `huggingface-cli download \(repo)`"
        case let .ambiguousRepo(repo, snapshot, files):
            return files.isEmpty ? "\(repo): the cached snapshot \(snapshot) has no model_index.json and no .safetensors file"
                : "\(repo): none of the cached files (\(files.joined(separator: ", "))) is an SD3 checkpoint"
        case let .extrasNeedSingleFile(path): return "\(path): --clip-l, --clip-g and --t5 go with a single-file checkpoint, not a diffusers folder"
        case let .missingTokenizer(path, what, _, hint): return "\(path): no \(what) tokenizer found: \(hint)"
        case let .notSingleFile(path): return "\(path): already a diffusers folder; convert takes a single-file checkpoint"
        case let .outputExists(path): return "\(path): already exists; choose a new folder"
        }
    }
}
