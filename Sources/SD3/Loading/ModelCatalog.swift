import Foundation
import SafeTensors

/// Every SD3 model found on this machine, from headers and folder listings only: the configured paths
/// (`$SD3_MODEL`, the demo model), the Hugging Face cache and a models folder.
public struct ModelCatalog: Sendable {
    public struct Entry: Sendable, Equatable {
        /// What to pass as --model.
        public let model: String
        /// "diffusers folder", "single file", "Hugging Face cache (diffusers)", …
        public let layout: String
        /// "SD3 Medium", "SD3.5 Large", … (from the transformer's shapes).
        public let kind: String
        public let bytes: Int
        /// Which of CLIP-L, CLIP-G, T5-XXL it has.
        public let encoders: [String]
        /// Why it cannot be used, when a candidate turned out broken or foreign.
        public let problem: String?

        public init(model: String, layout: String, kind: String, bytes: Int, encoders: [String], problem: String?) {
            (self.model, self.layout, self.kind, self.bytes, self.encoders, self.problem) = (model, layout, kind, bytes, encoders, problem)
        }
    }

    /// `$XDG_DATA_HOME/sd3-studio/models` (else ~/.local/share/sd3-studio/models): where `sd3 models list` also looks.
    public static func modelsFolder(environment: [String: String]) -> String {
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
        return data + "/sd3-studio/models"
    }

    /// Looks at `configured` paths, every `*.safetensors` and diffusers folder directly inside `folders`,
    /// and every cached repo that holds an SD3 model.
    public static func scan(configured: [String], folders: [String], cache: HuggingFaceCache) -> [Entry] {
        var entries: [Entry] = []
        var seen = Set<String>()
        func add(_ model: String, layout: String, path: String) {
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard !seen.contains(real) else { return }
            seen.insert(real)
            entries.append(describe(model: model, layout: layout, path: path))
        }
        for path in configured where FileManager.default.fileExists(atPath: path) {
            add(path, layout: isFolder(path) ? "diffusers folder" : "single file", path: path)
        }
        for folder in folders {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() {
                let path = folder + "/" + name
                // LoRA files may sit beside the models (LoraCatalog lists them): they are not models.
                // So may TAESD's single files (TAESDSource): not models either.
                if name.hasSuffix(".safetensors") && !isFolder(path) && !LoraCatalog.isLora(path) && !TAESDSource.isTAESDFile(name) {
                    add(path, layout: "single file", path: path)
                }
                if FileManager.default.fileExists(atPath: path + "/model_index.json") { add(path, layout: "diffusers folder", path: path) }
            }
        }
        for (id, snapshot) in cache.repos() {
            if FileManager.default.fileExists(atPath: snapshot + "/model_index.json") {
                add(id, layout: "Hugging Face cache (diffusers)", path: snapshot)
            } else {
                for name in ((try? FileManager.default.contentsOfDirectory(atPath: snapshot)) ?? []).sorted() where name.hasSuffix(".safetensors") {
                    let entry = describe(model: snapshot + "/" + name, layout: "Hugging Face cache (single file, \(id))", path: snapshot + "/" + name)
                    if entry.problem == nil { add(snapshot + "/" + name, layout: entry.layout, path: snapshot + "/" + name) }
                }
            }
        }
        return entries
    }

    static func isFolder(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
    }

    static func describe(model: String, layout: String, path: String) -> Entry {
        do {
            let source = try ModelSource(path)
            let kind = HeaderConfigs.familyName(try source.transformerConfig())
            let encoders = [SD3Component.textEncoder, .textEncoder2, .textEncoder3].filter(source.has).map(\.label)
            return Entry(model: model, layout: layout, kind: kind, bytes: size(path), encoders: encoders, problem: nil)
        } catch {
            return Entry(model: model, layout: layout, kind: "?", bytes: size(path), encoders: [], problem: "\(error)")
        }
    }

    /// Bytes of a file, or of every file under a folder (symlinks followed, as the hub cache uses them).
    static func size(_ path: String) -> Int {
        guard isFolder(path) else { return (try? FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)[.size] as? Int) ?? 0 }
        let files = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
        return files.reduce(0) { total, file in
            let full = URL(fileURLWithPath: path + "/" + file).resolvingSymlinksInPath().path
            return total + (isFolder(full) ? 0 : size(full))
        }
    }
}
