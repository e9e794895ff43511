import Checksums
import Foundation
import RegularFiles
import SafeTensors
import Tensors

/// One LoRA file read into low-rank pairs keyed by our weight names (`transformer_blocks.0.attn.to_q.weight`), per
/// component. The layout (diffusers, kohya, ComfyUI, or a PEFT folder) is detected from the keys (`LoraKeyMap`). A fused
/// Stability qkv pair becomes three pairs that share the down matrix, each with a third of the up rows: ΔW = B·A
/// row-sliced.
public struct LoraFile: Sendable {
    public struct Pair: Sendable {
        public let down: Tensor  // A [r, in]
        public let up: Tensor    // B [out, r]
        /// alpha / r where the file stores alpha (kohya, ComfyUI) or diffusers' adapter metadata does, else 1.
        public let scale: Float
        /// The file's module name, for messages.
        public let sourceKey: String
    }

    public let path: String
    /// The file name without `.safetensors`: the name in A1111's `<lora:name:strength>` and `Lora hashes`.
    public let name: String
    public let layout: String
    /// A1111's short hash: the first 12 hex digits of the SHA-256 of the bytes after the header (`addnet_hash_safetensors`).
    public let shortHash: String
    public let pairs: [SD3Component: [String: Pair]]
    /// The weights file as it was when read; a file written again under the same path (the studio's training panel
    /// rewrites its output) is read again rather than reused (`ActiveLoras.read`).
    public let stamp: FileStamp?

    /// A file's device, inode, size and modification time: an atomic rewrite (a new inode) or an edit in place changes it.
    public struct FileStamp: Sendable, Equatable {
        let device: UInt64, inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int
    }

    /// The stamp of the file `path` names (a PEFT folder's weights file), nil when it cannot be looked at.
    public static func stamp(path: String) -> FileStamp? {
        let weights = (try? LoraPeftFolder(path))??.weights ?? path
        var info = stat()
        guard stat(weights, &info) == 0 else { return nil }
        #if os(Linux)
        let modified = info.st_mtim
        #else
        let modified = info.st_mtimespec
        #endif
        return FileStamp(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                         seconds: Int(modified.tv_sec), nanoseconds: Int(modified.tv_nsec))
    }

    public init(path: String) throws {
        let peft = try LoraPeftFolder(path)
        // Taken before the read, so a rewrite during it shows as a change next time.
        stamp = Self.stamp(path: path)
        let file = try SafeTensorsFile(path: peft?.weights ?? path)
        self.path = path
        name = peft?.name ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        shortHash = Self.shortHash(file)
        let adapterMetadata = try peft?.metadata ?? LoraAdapterMetadata(header: file.metadata, path: path)
        var modules: [String: [String: String]] = [:]  // module → suffix → tensor name
        for key in file.names.sorted() {
            for (fragment, model) in LoraKeyMap.foreignMarkers where key.contains(fragment) {
                throw LoraError.otherBaseModel(path: path, model: model, key: key)
            }
            let suffix = (LoraKeyMap.downSuffixes + LoraKeyMap.upSuffixes + [LoraKeyMap.alphaSuffix]).first { key.hasSuffix($0) }
            guard let suffix else { throw LoraError.unknownKey(path: path, key: key) }
            modules[String(key.dropLast(suffix.count)), default: [:]][suffix] = key
        }
        guard !modules.isEmpty else { throw LoraError.empty(path: path) }
        var layout: LoraKeyMap.Layout?
        var resolvers: [String: LoraKeyMap.Resolver] = [:]
        var pairs: [SD3Component: [String: Pair]] = [:]
        for (module, parts) in modules.sorted(by: { $0.key < $1.key }) {
            guard let (kind, prefix, component) = LoraKeyMap.prefixes.first(where: { module.hasPrefix($0.1) }) else {
                throw LoraError.unknownKey(path: path, key: parts.values.sorted()[0])
            }
            if let layout, layout != kind { throw LoraError.mixedLayouts(path: path, first: layout.rawValue, second: kind.rawValue, key: module) }
            layout = kind
            let resolve = resolvers[prefix] ?? LoraKeyMap.resolver(kind, component)
            resolvers[prefix] = resolve
            guard let downKey = LoraKeyMap.downSuffixes.compactMap({ parts[$0] }).first,
                  let upKey = LoraKeyMap.upSuffixes.compactMap({ parts[$0] }).first else {
                throw LoraError.incompletePair(path: path, key: parts.values.sorted()[0])
            }
            if kind == .peft && peft == nil {
                throw LoraError.badAdapterMetadata(path: path, reason: "key \(downKey) is PEFT's; give the folder with \(LoraPeftFolder.configName)")
            }
            var down = try file.tensor(downKey), up = try file.tensor(upKey)
            // peft's Conv2d LoRA (Hyper-SD3 and Flash-SD3 on pos_embed.proj): A a conv [r, in, kh, kw], B a 1×1 conv
            // [out, r, 1, 1]; ΔW = B·A over r (peft tuners/lora/layer.py Conv2d.get_delta_weight), a matrix pair on
            // the flattened kernel [out, in·kh·kw].
            if down.shape.count == 4, up.shape.count == 4, up.shape[2] == 1, up.shape[3] == 1, down.shape[0] > 0, up.shape[0] > 0 {
                down = down.reshaped([down.shape[0], down.count / down.shape[0]])
                up = up.reshaped([up.shape[0], up.shape[1]])
            }
            let rank = down.shape.first ?? 0
            guard down.shape.count == 2, up.shape.count == 2, up.shape[1] == rank, rank > 0 else {
                throw LoraError.badPairShapes(path: path, key: downKey, down: down.shape, up: up.shape)
            }
            try Self.requireSane(down, key: downKey, path: path)
            try Self.requireSane(up, key: upKey, path: path)
            var scale: Float = 1
            if let alphaKey = parts[LoraKeyMap.alphaSuffix] {
                let alpha = try file.tensor(alphaKey)
                guard alpha.count == 1, let value = alpha.data.first, value.isFinite, abs(value) <= Self.maximumMagnitude else {
                    throw LoraError.badValue(path: path, key: alphaKey, reason: "alpha must be one finite number within ±\(Int(Self.maximumMagnitude)), found \(alpha.shape) \(Array(alpha.data.prefix(3)))")
                }
                scale = value / Float(rank)
            } else if kind == .diffusers || kind == .peft, let adapterMetadata,
                      let s = try adapterMetadata.scale(component: kind == .peft ? SD3Component.transformer.rawValue : String(prefix.dropLast()),
                                                        module: String(module.dropFirst(prefix.count)),
                                                        rank: rank, path: path) {
                scale = s
            }
            guard let (targets, transform) = resolve(String(module.dropFirst(prefix.count))) else {
                throw LoraError.unknownKey(path: path, key: downKey)
            }
            let ups: [Tensor]
            switch transform {
            case .none: ups = [up]
            case .split:
                guard up.shape[0] % targets.count == 0 else { throw LoraError.badPairShapes(path: path, key: upKey, down: down.shape, up: up.shape) }
                ups = Self.rowSlices(up, count: targets.count)
            case .swapHalves:  // (shift, scale) rows → (scale, shift), as the base weight
                guard up.shape[0] % 2 == 0 else { throw LoraError.badPairShapes(path: path, key: upKey, down: down.shape, up: up.shape) }
                let halves = Self.rowSlices(up, count: 2)
                ups = [Self.stack(halves[1], halves[0])]
            case .squeeze, .transpose, .drop: throw LoraError.unknownKey(path: path, key: downKey)
            }
            for (target, part) in zip(targets, ups) {
                let key = target + ".weight"
                if pairs[component]?[key] != nil { throw LoraError.duplicateTarget(path: path, key: downKey, target: key) }
                pairs[component, default: [:]][key] = Pair(down: down, up: part, scale: scale, sourceKey: module)
            }
        }
        self.layout = layout!.rawValue
        self.pairs = pairs
    }

    /// Largest magnitude of a LoRA weight or alpha: real ones stay below 100; beyond this, s·B·A leaves float range.
    static let maximumMagnitude: Float = 65536

    /// NaN, Inf or huge values (a corrupted file) are refused by key, before they reach any weight.
    static func requireSane(_ t: Tensor, key: String, path: String) throws {
        guard let bad = t.data.first(where: { !$0.isFinite || abs($0) > maximumMagnitude }) else { return }
        throw LoraError.badValue(path: path, key: key, reason: "holds \(bad); LoRA weights must be finite numbers within ±\(Int(maximumMagnitude))")
    }

    /// `count` equal slices of a matrix's rows.
    static func rowSlices(_ t: Tensor, count: Int) -> [Tensor] {
        let rows = t.shape[0] / count, columns = t.shape[1]
        return (0..<count).map { Tensor(shape: [rows, columns], data: Array(t.data[$0 * rows * columns..<($0 + 1) * rows * columns])) }
    }

    static func stack(_ a: Tensor, _ b: Tensor) -> Tensor {
        Tensor(shape: [a.shape[0] + b.shape[0], b.shape[1]], data: a.data + b.data)
    }

    static func shortHash(_ file: SafeTensorsFile) -> String { shortHash(path: file.path) }

    /// The short hash of a .safetensors file ("" when it cannot be read), without reading its tensors.
    /// Only a regular file is read (a FIFO would block), and a header length past the file's end gives "".
    public static func shortHash(path: String) -> String {
        // A PEFT folder is hashed by its weights file.
        if let weights = (try? LoraPeftFolder(path))??.weights, weights != path { return shortHash(path: weights) }
        guard let (fd, size) = try? RegularFile.open(path) else { return "" }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        guard let prefix = try? handle.read(upToCount: 8), prefix.count == 8 else { return "" }
        let header = prefix.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard size >= 8, header <= UInt64(size - 8) else { return "" }
        guard (try? handle.seek(toOffset: 8 + header)) != nil else { return "" }
        var hash = SHA256()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { hash.update(chunk) }
        return String(SHA256.hex(hash.finish()).prefix(12))
    }
}

public enum LoraError: Error, Equatable, CustomStringConvertible {
    case otherBaseModel(path: String, model: String, key: String)
    case unknownKey(path: String, key: String)
    case mixedLayouts(path: String, first: String, second: String, key: String)
    case incompletePair(path: String, key: String)
    case badPairShapes(path: String, key: String, down: [Int], up: [Int])
    case duplicateTarget(path: String, key: String, target: String)
    case empty(path: String)
    case matchesNothing(path: String, key: String, target: String)
    case shapeMismatch(path: String, key: String, target: String, expected: [Int], found: [Int], model: String?)
    case badStrength(String)
    case notRunTime
    case badAdapterMetadata(path: String, reason: String)
    case badValue(path: String, key: String, reason: String)
    case strengthOutOfRange(path: String, strength: Double)

    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .otherBaseModel(path, model, key): return "\(path): a LoRA for \(model), not SD3 (key \(key))"
        case let .unknownKey(path, key): return "\(path): LoRA key \(key) matches no SD3 layer (diffusers, kohya or ComfyUI names)"
        case let .mixedLayouts(path, first, second, key): return "\(path): LoRA mixes \(first) and \(second) key layouts (at \(key))"
        case let .incompletePair(path, key): return "\(path): LoRA key \(key) has no matching down/up (lora_A/lora_B) partner"
        case let .badPairShapes(path, key, down, up): return "\(path): LoRA pair \(key): down \(down) and up \(up) do not form a low-rank pair"
        case let .duplicateTarget(path, key, target): return "\(path): LoRA key \(key) targets \(target) a second time"
        case let .empty(path): return "\(path): no LoRA tensors in the file"
        case let .matchesNothing(path, key, target):
            return "\(path): LoRA key \(key) targets \(target), which this model does not have"
        case let .shapeMismatch(path, key, target, expected, found, model):
            return "\(path): LoRA key \(key) gives \(target) shape \(found), the model has \(expected)"
                + (model.map { " (a LoRA for \($0))" } ?? "")
        case let .badStrength(text): return "--lora \(text): expected FILE or FILE:STRENGTH with a number for STRENGTH"
        case let .badAdapterMetadata(path, reason): return "\(path): LoRA adapter metadata: \(reason)"
        case let .badValue(path, key, reason): return "\(path): LoRA key \(key): \(reason)"
        case let .strengthOutOfRange(path, strength):
            return "LoRA \(path): " + (GenerationLimits.problem("strength", strength, GenerationLimits.loraStrength) ?? "strength \(strength)")
        case .notRunTime: return "LoRAs can be changed without reloading only in run-time mode (LoadOptions.loraMode = .runTime)"
        }
    }
}
