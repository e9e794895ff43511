import Foundation
import SafeTensors

/// One component folder of a diffusers model (`text_encoder/`, `transformer/`, …): its config and weights.
public struct ComponentFolder: Sendable {
    public let path: String

    public init(_ path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            throw ModelError.missingComponent(path: path)
        }
        self.path = path
    }

    /// Decodes `config.json` (or another config file) into `T`, naming the file on failure.
    public func config<T: Decodable>(_ type: T.Type, file: String = "config.json") throws -> T {
        let url = URL(fileURLWithPath: path).appendingPathComponent(file)
        guard let data = try? Data(contentsOf: url) else { throw ModelError.missingFile(path: url.path) }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelError.invalidConfig(path: url.path, reason: "missing '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw ModelError.invalidConfig(path: url.path, reason: "wrong type for '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw ModelError.invalidConfig(path: url.path, reason: "not valid JSON")
        }
    }

    /// The weights a loader uses: the plain `*.safetensors` set, or the only variant when there is no plain one.
    public func weights() throws -> WeightStore {
        let entries = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        let sets = try ModelInspector.weightSets(folder: path, entries: entries)
        guard let chosen = sets.first(where: { $0.variant == nil }) ?? (sets.count == 1 ? sets.first : nil) else {
            throw sets.isEmpty ? ModelError.missingWeights(path: path)
                : ModelError.ambiguousWeights(path: path, variants: sets.compactMap(\.variant))
        }
        return try WeightStore(paths: chosen.files)
    }
}

public enum ModelError: Error, Equatable, CustomStringConvertible {
    case missingComponent(path: String)
    case missingFile(path: String)
    case missingWeights(path: String)
    case ambiguousWeights(path: String, variants: [String])
    case invalidConfig(path: String, reason: String)
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missingComponent(path): return "\(path): component folder not found"
        case let .missingFile(path): return "\(path): file not found"
        case let .missingWeights(path): return "\(path): no .safetensors weights in the folder"
        case let .ambiguousWeights(path, variants): return "\(path): several weight variants (\(variants.joined(separator: ", "))) and no plain one"
        case let .invalidConfig(path, reason): return "\(path): \(reason)"
        case let .unsupported(path, reason): return "\(path): \(reason)"
        }
    }
}
