import Foundation
import ImageMetadata
import RegularFiles
import SafeTensors

/// The LoRA files on this machine: `*.safetensors` with LoRA keys in `<models folder>/loras` and in the models folder
/// itself (headers only). It finds a recorded LoRA again, for a recalled image, by its recorded path or by its name.
public enum LoraCatalog {
    public struct Candidate: Sendable, Equatable {
        /// The file name without `.safetensors` (the name a PNG records).
        public var name: String
        public var path: String
        public init(name: String, path: String) { (self.name, self.path) = (name, path) }
    }

    /// Where a recorded LoRA was found: nil `path` when it was not; `hashMatches` false when the file found by name
    /// is not the one the image was made with.
    public struct Location: Sendable, Equatable {
        public var record: ImageMetadata.LoraRecord
        public var path: String?
        public var hashMatches: Bool
        public init(record: ImageMetadata.LoraRecord, path: String?, hashMatches: Bool) {
            (self.record, self.path, self.hashMatches) = (record, path, hashMatches)
        }
    }

    /// `<models folder>/loras`, then the models folder (`ModelCatalog.modelsFolder`).
    public static func folders(environment: [String: String]) -> [String] {
        let models = ModelCatalog.modelsFolder(environment: environment)
        return [models + "/loras", models]
    }

    /// Every LoRA file and PEFT LoRA folder directly inside `folders`, by name; a name found twice keeps its first folder.
    public static func scan(folders: [String]) -> [Candidate] {
        var found: [Candidate] = []
        for folder in folders {
            for entry in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() {
                let path = folder + "/" + entry
                let name = entry.hasSuffix(".safetensors") ? String(entry.dropLast(".safetensors".count)) : entry
                guard !found.contains(where: { $0.name == name }) else { continue }
                if entry.hasSuffix(".safetensors") ? isLora(path) : (try? LoraPeftFolder(path)) != nil {
                    found.append(Candidate(name: name, path: path))
                }
            }
        }
        return found
    }

    /// Whether a file's header names LoRA tensors (a `lora_A`/`lora_down` key).
    public static func isLora(_ path: String) -> Bool {
        guard let file = try? SafeTensorsFile(path: path) else { return false }
        return file.names.contains { name in LoraKeyMap.downSuffixes.contains { name.hasSuffix($0) } }
    }

    /// What the user typed: an existing file, else a name or file name in `folders`; nil when none exists.
    public static func resolve(_ text: String, folders: [String]) -> String? {
        let path = (text as NSString).expandingTildeInPath
        if isFile(path) { return path }
        guard !text.contains("/") else { return nil }
        for folder in folders {
            for name in [text, text + ".safetensors"] where isFile(folder + "/" + name) { return folder + "/" + name }
        }
        return nil
    }

    /// Finds a recorded LoRA: at its recorded path, else by its name in `folders`; a file whose short hash is the
    /// recorded one wins over one that only has the name.
    public static func locate(_ record: ImageMetadata.LoraRecord, folders: [String]) -> Location {
        // By name: a file NAME.safetensors or a PEFT folder NAME.
        let named = folders.flatMap { [$0 + "/" + record.name + ".safetensors", $0 + "/" + record.name] }
        let candidates = ([record.path].compactMap { $0 } + named).filter(isFile)
        if let exact = candidates.first(where: { LoraFile.shortHash(path: $0) == record.hash }) {
            return Location(record: record, path: exact, hashMatches: true)
        }
        return Location(record: record, path: candidates.first, hashMatches: false)
    }

    /// A regular file (a FIFO or a device at a recorded path would block or never end when hashed), or a PEFT folder.
    static func isFile(_ path: String) -> Bool { RegularFile.problem(path) == nil || (try? LoraPeftFolder(path)) != nil }
}
