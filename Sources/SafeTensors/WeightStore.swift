import Synchronization
import Tensors

/// Where a model's weights come from: files (`WeightStore`) or, for benchmarks, generated values.
/// Models fetch every weight by full key and expected shape, then call `requireAllUsed()`.
public protocol WeightProvider: AnyObject, Sendable {
    /// The file (or description) named in error messages.
    var source: String { get }
    func contains(_ key: String) -> Bool
    func tensor(_ key: String, shape: [Int]) throws(SafeTensorsError) -> Tensor
    /// Records a key as accounted for without reading it (a tied copy or a buffer with no weights).
    func markUsed(_ key: String)
    /// Keys present but never fetched, sorted.
    var unusedKeys: [String] { get }
    /// The shape `key` has, from the header alone; nil when unknown.
    func shape(of key: String) -> [Int]?
}

extension WeightProvider {
    /// Throws when some key was never fetched: a checkpoint for a different architecture.
    public func requireAllUsed() throws(SafeTensorsError) {
        let unused = unusedKeys
        if !unused.isEmpty { throw .unusedKeys(path: source, keys: unused, total: unused.count) }
    }

    public func scope(_ prefix: String) -> WeightScope { WeightScope(store: self, prefix: prefix) }

    public func shape(of key: String) -> [Int]? { nil }

    /// Elements of the weights not fetched yet (all of them before a model is built), from the headers; saturates at
    /// Int.max rather than overflowing, so a hostile shape reads as "too large".
    public var pendingElementCount: Int {
        var total = 0
        for key in unusedKeys {
            var elements = 1
            for d in shape(of: key) ?? [] {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                elements = overflow ? Int.max : product
            }
            let (sum, overflow) = total.addingReportingOverflow(elements)
            total = overflow ? Int.max : sum
        }
        return total
    }
}

/// The weights of one model component, possibly sharded over several files, read strictly:
/// every weight is fetched by its full key with its expected shape, and the keys never
/// fetched can be listed (or turned into an error) once the model is built.
public final class WeightStore: WeightProvider {
    public let files: [SafeTensorsFile]
    private let locations: [String: Int]  // key → index in `files`
    private let fetched = Mutex<Set<String>>([])

    public init(files: [SafeTensorsFile]) throws(SafeTensorsError) {
        var locations: [String: Int] = [:]
        for (index, file) in files.enumerated() {
            for name in file.names {
                if let previous = locations[name] {
                    throw .duplicateKey(key: name, firstPath: files[previous].path, secondPath: file.path)
                }
                locations[name] = index
            }
        }
        self.files = files
        self.locations = locations
    }

    public convenience init(paths: [String]) throws(SafeTensorsError) {
        var files: [SafeTensorsFile] = []
        for path in paths { files.append(try SafeTensorsFile(path: path)) }
        try self.init(files: files)
    }

    public var keys: [String] { locations.keys.sorted() }

    /// A description of where the weights come from, for error messages.
    public var source: String { files.count == 1 ? files[0].path : "\(files.first?.path ?? "(no files)") and \(files.count - 1) more" }

    public func info(_ key: String) -> TensorInfo? {
        locations[key].flatMap { files[$0].info(key) }
    }

    /// The tensor under `key`, which must have exactly `shape`.
    public func tensor(_ key: String, shape: [Int]) throws(SafeTensorsError) -> Tensor {
        guard let index = locations[key], let info = files[index].info(key) else { throw .missingKey(path: source, key: key) }
        guard info.shape == shape else { throw .shapeMismatch(path: files[index].path, key: key, expected: shape, found: info.shape) }
        let t = try files[index].tensor(info)
        fetched.withLock { _ = $0.insert(key) }
        return t
    }

    public func contains(_ key: String) -> Bool { locations[key] != nil }

    public func shape(of key: String) -> [Int]? { info(key)?.shape }

    public func markUsed(_ key: String) {
        fetched.withLock { _ = $0.insert(key) }
    }

    public var unusedKeys: [String] {
        let used = fetched.withLock { $0 }
        return locations.keys.filter { !used.contains($0) }.sorted()
    }

}

/// A view of a `WeightStore` under a key prefix, mirroring the module tree
/// (`store.scope("transformer_blocks.3").scope("attn")["to_q.weight", [1536, 1536]]`).
public struct WeightScope: Sendable {
    public let store: any WeightProvider
    public let prefix: String

    public func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    public func scope(_ name: String) -> WeightScope { WeightScope(store: store, prefix: key(name)) }

    public func tensor(_ name: String, shape: [Int]) throws(SafeTensorsError) -> Tensor {
        try store.tensor(key(name), shape: shape)
    }

    public func contains(_ name: String) -> Bool { store.contains(key(name)) }
}
