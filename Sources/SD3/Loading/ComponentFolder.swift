import Foundation
import RegularFiles
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

    /// Largest config file read: real ones are a few kilobytes.
    static let configSizeLimit = 4 << 20

    /// Decodes `config.json` (or another config file) into `T`, naming the file on failure; a `CheckedConfig` is
    /// also checked, so nothing is built from an out-of-range value.
    public func config<T: Decodable>(_ type: T.Type, file: String = "config.json") throws -> T {
        let url = URL(fileURLWithPath: path).appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError.missingFile(path: url.path) }
        let data: Data
        do { data = Data(try RegularFile.contents(url.path, limit: Self.configSizeLimit)) } catch {
            throw ModelError.invalidConfig(path: url.path, reason: error.reason)
        }
        return try Self.checkedConfig(T.self, data, path: url.path)
    }

    /// Config bytes decoded, then checked when `T` is a `CheckedConfig`: what every loader and the fuzz suites call.
    static func checkedConfig<T: Decodable>(_ type: T.Type, _ data: Data, path: String) throws -> T {
        let decoded = try decode(T.self, data, path: path)
        if let checked = decoded as? any CheckedConfig, let problem = checked.problem {
            throw ModelError.invalidConfig(path: path, reason: problem)
        }
        return decoded
    }

    /// JSON bytes into `T`, each failure a line naming the file and the key.
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelError.invalidConfig(path: path, reason: "missing '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw ModelError.invalidConfig(path: path, reason: "wrong type for '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            if let key = unfitNumber(T.self, data) { throw ModelError.invalidConfig(path: path, reason: "'\(key)' is out of range") }
            throw ModelError.invalidConfig(path: path, reason: "not valid JSON")
        }
    }

    /// The key of valid JSON whose number does not fit its field (1e300 or 2.5 for a count, 1e39 for a Float): Linux's
    /// JSONDecoder calls that "not valid JSON" without a key, so the first key whose removal cures it is named.
    static func unfitNumber<T: Decodable>(_ type: T.Type, _ data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        for (key, value) in object.sorted(by: { $0.key < $1.key }) where value is NSNumber {
            var without = object
            without[key] = nil
            guard let rest = try? JSONSerialization.data(withJSONObject: without) else { continue }
            do { _ = try JSONDecoder().decode(T.self, from: rest) } catch DecodingError.dataCorrupted { continue } catch {}
            return key
        }
        return nil
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
    /// Weights that need `bytes` once decoded, more than the machine's `available` memory.
    case tooLarge(path: String, bytes: Int, available: UInt64)

    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .missingComponent(path): return "\(path): component folder not found"
        case let .missingFile(path): return "\(path): file not found"
        case let .missingWeights(path): return "\(path): no .safetensors weights in the folder"
        case let .ambiguousWeights(path, variants): return "\(path): several weight variants (\(variants.joined(separator: ", "))) and no plain one"
        case let .invalidConfig(path, reason): return "\(path): \(reason)"
        case let .unsupported(path, reason): return "\(path): \(reason)"
        case let .tooLarge(path, bytes, available):
            let needed = bytes == Int.max ? "more than any machine has" : String(format: "%.1f GB", Double(bytes) / 1e9)
            return "\(path): the weights need \(needed) once loaded, more than this machine's \(String(format: "%.1f GB", Double(available) / 1e9)) of memory"
        }
    }
}
