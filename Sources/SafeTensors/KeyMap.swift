import Foundation
import Synchronization
import Tensors

/// A declarative map from a checkpoint's own key names to the names a model fetches (diffusers names).
/// Each rule's `source` and `targets` are patterns; placeholders match one key segment:
/// `{i}`, `{j}` an index; `{last}` only the highest index that position takes in the file; `{r}` an index
/// counted from the other end (target = count − 1 − source, as LDM's decoder `up.N` vs diffusers `up_blocks`);
/// `{*}` the rest of the key; any other `{name}` one non-numeric-or-numeric segment. The first matching rule wins.
public struct KeyMap: Sendable {
    public enum Transform: Sendable, Equatable {
        /// The tensor as stored.
        case none
        /// A fused tensor cut into `targets.count` equal slices along dim 0 (qkv → q, k, v).
        case split
        /// The two halves along dim 0 exchanged: (shift, scale) → (scale, shift).
        case swapHalves
        /// Trailing size-1 dimensions dropped: a 1×1 convolution [C, C, 1, 1] read as a linear [C, C].
        case squeeze
        /// A 2-D matrix transposed (OpenCLIP stores `text_projection` as [in, out]).
        case transpose
        /// Present in checkpoints but not used by the model (accounted for, never read).
        case drop
    }

    public struct Rule: Sendable {
        public let source: String
        public let targets: [String]
        public let transform: Transform

        public init(_ source: String, _ target: String, _ transform: Transform = .none) {
            self.init(source, [target], transform)
        }

        public init(_ source: String, _ targets: [String], _ transform: Transform) {
            self.source = source
            self.targets = targets
            self.transform = transform
        }
    }

    /// A weight the checkpoint does not store but the model needs: the identity matrix whose side is
    /// dim 0 of `sizeOf` (SD3's CLIP-L `text_projection`, diffusers `single_file_utils.py`).
    public struct Identity: Sendable {
        public let target: String
        public let sizeOf: String
        public init(_ target: String, sizeOf: String) { self.target = target; self.sizeOf = sizeOf }
    }

    public let rules: [Rule]
    public let identities: [Identity]

    public init(_ rules: [Rule], identities: [Identity] = []) {
        self.rules = rules
        self.identities = identities
    }
}

/// A `WeightProvider` over a checkpoint in another layout: every model key is resolved through a `KeyMap`
/// to a stored tensor and a transform, so the model code loads unchanged. The header alone decides the
/// mapping, so `shape(of:)` and the used/unused bookkeeping work without reading any data.
public final class MappedWeights: WeightProvider {
    enum Origin: Sendable {
        case stored(StoredTensor, KeyMap.Transform, part: Int, parts: Int)
        case identity(Int)
    }

    public let source: String
    private let origins: [String: Origin]
    /// Stored names no rule matched.
    private let unmatched: [String]
    private let fetched = Mutex<Set<String>>([])

    public init(_ tensors: [StoredTensor], map: KeyMap, source: String) throws(SafeTensorsError) {
        self.source = source
        let compiled = map.rules.map(CompiledRule.init)
        // Per pattern prefix, the highest index ({last}) and the index count ({r}).
        var highest: [String: Int] = [:]
        for t in tensors {
            for rule in compiled { rule.recordIndices(t.name, into: &highest) }
        }
        var origins: [String: Origin] = [:]
        var unmatched: [String] = []
        for t in tensors {
            guard let (rule, targets) = compiled.lazy.compactMap({ r in r.targets(for: t.name, highest: highest).map { (r, $0) } }).first else {
                unmatched.append(t.name)
                continue
            }
            if rule.transform == .drop { continue }
            // A fused qkv splits into equal row blocks and (shift, scale) into two halves: anything else is not that layer.
            let parts = rule.transform == .split ? targets.count : rule.transform == .swapHalves ? 2 : 1
            if parts > 1, t.shape.first.map({ $0 % parts != 0 }) ?? true {
                throw .indivisible(path: source, key: t.name, shape: t.shape, parts: parts)
            }
            for (part, target) in targets.enumerated() {
                if origins[target] != nil {
                    throw .duplicateKey(key: target, firstPath: source, secondPath: t.path)
                }
                origins[target] = .stored(t, rule.transform, part: part, parts: targets.count)
            }
        }
        for identity in map.identities where origins[identity.target] == nil {
            if let size = Self.shape(origins[identity.sizeOf])?.first { origins[identity.target] = .identity(size) }
        }
        self.origins = origins
        self.unmatched = unmatched.sorted()
    }

    /// The model keys this checkpoint provides, sorted.
    public var keys: [String] { origins.keys.sorted() }

    /// The shape `key` will have, from the header alone.
    public func shape(of key: String) -> [Int]? { Self.shape(origins[key]) }

    private static func shape(_ origin: Origin?) -> [Int]? {
        switch origin {
        case nil: return nil
        case let .identity(n): return [n, n]
        case let .stored(t, transform, _, parts):
            switch transform {
            case .none, .swapHalves: return t.shape
            case .drop: return nil
            case .split: return t.shape.isEmpty ? nil : [t.shape[0] / parts] + t.shape.dropFirst()
            case .squeeze:
                var s = t.shape
                while s.count > 2 && s.last == 1 { s.removeLast() }
                return s
            case .transpose: return t.shape.count == 2 ? [t.shape[1], t.shape[0]] : nil
            }
        }
    }

    /// The stored dtype behind `key` (F32 for generated weights).
    public func dtype(of key: String) -> DType? {
        switch origins[key] {
        case nil: return nil
        case .identity: return .f32
        case let .stored(t, _, _, _): return t.dtype
        }
    }

    /// Where `key` comes from, for messages: the stored name, or "identity".
    public func origin(of key: String) -> String? {
        switch origins[key] {
        case nil: return nil
        case .identity: return "identity"
        case let .stored(t, _, _, _): return t.path
        }
    }

    public func contains(_ key: String) -> Bool { origins[key] != nil }

    public func tensor(_ key: String, shape: [Int]) throws(SafeTensorsError) -> Tensor {
        guard let origin = origins[key] else { throw .missingKey(path: source, key: key) }
        let found = Self.shape(origin) ?? []
        guard found == shape else {
            throw .shapeMismatch(path: self.origin(of: key) ?? source, key: key, expected: shape, found: found)
        }
        let result: Tensor
        switch origin {
        case let .identity(n):
            var identity = Tensor(zeros: [n, n])
            for i in 0..<n { identity.data[i * n + i] = 1 }
            result = identity
        case let .stored(t, transform, part, parts):
            let whole = try t.read()
            result = Self.apply(transform, whole, part: part, parts: parts, shape: found)
        }
        fetched.withLock { _ = $0.insert(key) }
        return result
    }

    static func apply(_ transform: KeyMap.Transform, _ whole: Tensor, part: Int, parts: Int, shape: [Int]) -> Tensor {
        switch transform {
        case .none, .drop, .squeeze:
            return Tensor(shape: shape, data: whole.data)
        case .split:
            let size = whole.data.count / parts
            return Tensor(shape: shape, data: Array(whole.data[part * size..<(part + 1) * size]))
        case .swapHalves:
            let half = whole.data.count / 2
            return Tensor(shape: shape, data: Array(whole.data[half...] + whole.data[..<half]))
        case .transpose:
            let (rows, columns) = (whole.shape[0], whole.shape[1])
            return Tensor(shape: shape) { out in
                for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = whole.data[r * columns + c] } }
            }
        }
    }

    public func markUsed(_ key: String) {
        fetched.withLock { _ = $0.insert(key) }
    }

    /// Stored names no rule of the map knows (renamed or foreign keys), sorted.
    public var unmatchedKeys: [String] { unmatched }

    /// Model keys never fetched, then stored names no rule knows (both mean a different architecture).
    public var unusedKeys: [String] {
        let used = fetched.withLock { $0 }
        return keys.filter { !used.contains($0) } + unmatched
    }
}

/// A `KeyMap.Rule` turned into a regular expression with named captures.
private struct CompiledRule {
    let expression: NSRegularExpression
    let names: [String]
    let targets: [String]
    let transform: KeyMap.Transform
    /// For `{last}` and `{r}`: the literal text before the placeholder, which keys the index statistics.
    let indexPrefixes: [String: String]

    init(_ rule: KeyMap.Rule) {
        var pattern = "^", names: [String] = [], prefixes: [String: String] = [:], literal = ""
        var rest = Substring(rule.source)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            literal += rest[..<open]
            pattern += NSRegularExpression.escapedPattern(for: String(rest[..<open]))
            let name = String(rest[rest.index(after: open)..<close])
            names.append(name)
            switch name {
            case "*": pattern += "(.+)"
            case "i", "j", "k", "last", "r": pattern += "([0-9]+)"
            default: pattern += "([^.]+)"
            }
            if name == "last" || name == "r" { prefixes[name] = literal }
            literal += "{\(name)}"
            rest = rest[rest.index(after: close)...]
        }
        pattern += NSRegularExpression.escapedPattern(for: String(rest)) + "$"
        expression = try! NSRegularExpression(pattern: pattern)
        self.names = names
        targets = rule.targets
        transform = rule.transform
        indexPrefixes = prefixes
    }

    func captures(_ key: String) -> [String: String]? {
        let range = NSRange(key.startIndex..., in: key)
        guard let match = expression.firstMatch(in: key, range: range) else { return nil }
        var values: [String: String] = [:]
        for (index, name) in names.enumerated() {
            values[name] = String(key[Range(match.range(at: index + 1), in: key)!])
        }
        return values
    }

    /// Notes the highest index each `{last}` / `{r}` position takes.
    func recordIndices(_ key: String, into highest: inout [String: Int]) {
        guard !indexPrefixes.isEmpty, let values = captures(key) else { return }
        for (name, prefix) in indexPrefixes {
            if let n = values[name].flatMap({ Int($0) }) { highest[prefix] = max(highest[prefix] ?? n, n) }
        }
    }

    func targets(for key: String, highest: [String: Int]) -> [String]? {
        guard var values = captures(key) else { return nil }
        if let prefix = indexPrefixes["last"], values["last"].flatMap({ Int($0) }) != highest[prefix] { return nil }
        if let prefix = indexPrefixes["r"], let top = highest[prefix] {
            // An index too long for Int matches no layer.
            guard let index = values["r"].flatMap({ Int($0) }) else { return nil }
            values["r"] = String(top - index)
        }
        return targets.map { target in
            var result = target
            for (name, value) in values { result = result.replacingOccurrences(of: "{\(name)}", with: value) }
            return result
        }
    }
}

extension KeyMap {
    /// Resolves one key at a time (a LoRA's module names), with no file's index statistics: `{last}` rules never
    /// match and `{r}` is kept as written. Returns the targets and transform of the first matching rule.
    public func resolver() -> (String) -> (targets: [String], transform: Transform)? {
        let compiled = rules.map(CompiledRule.init)
        return { key in
            for rule in compiled {
                if let targets = rule.targets(for: key, highest: [:]) { return (targets, rule.transform) }
            }
            return nil
        }
    }
}
