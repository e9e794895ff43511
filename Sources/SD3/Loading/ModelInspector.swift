import Foundation
import RegularFiles
import SafeTensors

/// Reads headers and configs (never tensor data) to describe a file or a diffusers folder.
public enum ModelInspector {
    public static func inspect(_ path: String) throws -> ModelInfo {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw ModelInfoError.notFound(path) }
        if !isFolder.boolValue {
            let file = try SafeTensorsFile(path: path)
            let set = summarize([file], variant: nil)
            let name = URL(fileURLWithPath: path).lastPathComponent
            return ModelInfo(path: path, kind: .file, components: [
                ComponentInfo(name: name, library: nil, declaredClass: nil, configClass: nil, weights: [set], otherFiles: [], metadata: file.metadata),
            ])
        }
        let index = path + "/model_index.json"
        if FileManager.default.fileExists(atPath: index) {
            let json = try readJSON(index)
            guard let className = json["_class_name"] as? String else {
                throw ModelInfoError.invalidJSON(path: index, reason: "no _class_name")
            }
            var components: [ComponentInfo] = []
            var absent: [String] = []
            for name in json.keys.sorted() where !name.hasPrefix("_") {
                // Entries are [library, class]; [null, null] marks an optional component left out.
                guard let pair = json[name] as? [Any], pair.count == 2 else { continue }
                let library = pair[0] as? String, declared = pair[1] as? String
                guard library != nil || declared != nil else { absent.append(name); continue }
                let folder = path + "/" + name
                guard FileManager.default.fileExists(atPath: folder) else {
                    throw ModelInfoError.missingComponentFolder(component: name, path: path)
                }
                components.append(try component(name: name, folder: folder, library: library, declaredClass: declared))
            }
            return ModelInfo(path: path, kind: .pipeline(className: className, diffusersVersion: json["_diffusers_version"] as? String),
                             components: components, absentComponents: absent)
        }
        let one = try component(name: URL(fileURLWithPath: path).lastPathComponent, folder: path, library: nil, declaredClass: nil)
        guard !one.weights.isEmpty || one.configClass != nil else { throw ModelInfoError.notAModel(path) }
        return ModelInfo(path: path, kind: .component, components: [one])
    }

    static func component(name: String, folder: String, library: String?, declaredClass: String?) throws -> ComponentInfo {
        let entries = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        var configClass: String?
        for configName in ["config.json", "scheduler_config.json", "tokenizer_config.json"] where entries.contains(configName) {
            let config = try readJSON(folder + "/" + configName)
            configClass = (config["_class_name"] as? String) ?? (config["architectures"] as? [String])?.first
                ?? (config["tokenizer_class"] as? String)
            if configClass != nil { break }
        }
        let weights = try weightSets(folder: folder, entries: entries)
        let used = Set(weights.flatMap(\.files).map { URL(fileURLWithPath: $0).lastPathComponent })
        let others = entries.filter { !used.contains($0) }
        return ComponentInfo(name: name, library: library, declaredClass: declaredClass, configClass: configClass,
                             weights: weights, otherFiles: others, metadata: [:])
    }

    /// Groups `*.safetensors` files into sets: `NAME.safetensors` or shards `NAME-00001-of-00002.safetensors`
    /// listed by `NAME.safetensors.index.json`, with an optional variant before the extension (`NAME.fp16.safetensors`).
    static func weightSets(folder: String, entries: [String]) throws -> [WeightSet] {
        var groups: [String?: [String]] = [:]
        for entry in entries where entry.hasSuffix(".safetensors") {
            groups[variant(of: entry), default: []].append(entry)
        }
        // Shard indexes name their files; a listed file missing from disk is an error worth naming.
        for entry in entries where entry.hasSuffix(".safetensors.index.json") {
            let index = try readJSON(folder + "/" + entry)
            guard let map = index["weight_map"] as? [String: String] else {
                throw ModelInfoError.invalidJSON(path: folder + "/" + entry, reason: "no weight_map")
            }
            for file in Set(map.values) where !entries.contains(file) {
                throw ModelInfoError.invalidJSON(path: folder + "/" + entry, reason: "names shard \(file), which is missing")
            }
        }
        var sets: [WeightSet] = []
        for key in groups.keys.sorted(by: { ($0 ?? "") < ($1 ?? "") }) {
            var files: [SafeTensorsFile] = []
            for name in groups[key]! { files.append(try SafeTensorsFile(path: folder + "/" + name)) }
            sets.append(summarize(files, variant: key))
        }
        return sets
    }

    /// `model.fp16.safetensors` → "fp16"; `model-00001-of-00002.fp16.safetensors` → "fp16"; plain names → nil.
    static func variant(of file: String) -> String? {
        var stem = Substring(file.dropLast(".safetensors".count))
        // Drop a shard suffix "-00001-of-00002" so shards of one set share a variant.
        if let range = stem.range(of: #"-[0-9]+-of-[0-9]+$"#, options: .regularExpression) { stem = stem[..<range.lowerBound] }
        let parts = stem.split(separator: ".")
        return parts.count >= 2 ? String(parts.last!) : nil
    }

    static func summarize(_ files: [SafeTensorsFile], variant: String?) -> WeightSet {
        var dtypes: [DType: Int] = [:]
        var tensors = 0, parameters = 0, bytes = 0
        for file in files {
            for t in file.tensors {
                tensors += 1
                parameters += t.elementCount
                bytes += t.byteCount
                dtypes[t.dtype, default: 0] += 1
            }
        }
        return WeightSet(variant: variant, files: files.map(\.path), tensorCount: tensors,
                         parameterCount: parameters, bytes: bytes, dtypes: dtypes)
    }

    static func readJSON(_ path: String) throws -> [String: Any] {
        let data: Data
        do { data = Data(try RegularFile.contents(path, limit: ComponentFolder.configSizeLimit)) } catch {
            throw ModelInfoError.invalidJSON(path: path, reason: "cannot read: \(error.reason)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dictionary = object as? [String: Any] else {
            throw ModelInfoError.invalidJSON(path: path, reason: "not a JSON object")
        }
        return dictionary
    }
}
