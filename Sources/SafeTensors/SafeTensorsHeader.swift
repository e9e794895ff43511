/// Parsing and validation of the JSON header, kept apart from the mapping so it is testable on bytes.
enum SafeTensorsHeader {
    struct Parsed {
        var tensors: [TensorInfo]
        var metadata: [String: String]
    }

    /// `dataStart`: bytes before the data section (8 + the header), so a truncation names whole-file sizes.
    static func parse(_ header: [UInt8], path: String, dataSize: Int, dataStart: Int = 0) throws(SafeTensorsError) -> Parsed {
        let json: JSONValue
        do {
            json = try JSONValue.parse(header)
        } catch {
            throw .invalidHeader(path: path, reason: header.isEmpty ? "empty header" : "not valid JSON: \(error)")
        }
        guard case .object(let keys, let values) = json else { throw .invalidHeader(path: path, reason: "the JSON is not an object") }
        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(keys.count)
        for (key, value) in zip(keys, values) {
            if key == "__metadata__" {
                guard case .object(let names, let entries) = value else { throw .invalidHeader(path: path, reason: "__metadata__ is not an object") }
                for (k, v) in zip(names, entries) {
                    guard case .string(let s) = v else { throw .invalidHeader(path: path, reason: "__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            tensors.append(try entry(key, value, path: path, dataSize: dataSize))
        }
        tensors.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        try checkBounds(tensors, path: path, dataSize: dataSize, dataStart: dataStart)
        // Sorted by start, any overlap shows between neighbours (zero-length tensors overlap nothing).
        var previous: TensorInfo?
        for t in tensors where t.byteCount > 0 {
            if let p = previous, t.begin < p.end { throw .overlap(path: path, first: p.name, second: t.name) }
            previous = t
        }
        return Parsed(tensors: tensors, metadata: metadata)
    }

    /// Offsets past the data section: a file whose tensors tile the data from 0 without gaps was cut short
    /// (an interrupted download), anything else points outside its own data.
    private static func checkBounds(_ tensors: [TensorInfo], path: String, dataSize: Int, dataStart: Int) throws(SafeTensorsError) {
        guard let last = tensors.max(by: { $0.end < $1.end }), last.end > dataSize else { return }
        var next = 0
        let tiled = tensors.allSatisfy { t in
            defer { next = t.end }
            return t.begin == next
        }
        if tiled { throw .truncated(path: path, expectedSize: dataStart + last.end, actualSize: dataStart + dataSize) }
        let bad = tensors.first { $0.end > dataSize }!
        throw .offsetsOutOfRange(path: path, key: bad.name, begin: bad.begin, end: bad.end, dataSize: dataSize)
    }

    private static func entry(_ key: String, _ value: JSONValue, path: String, dataSize: Int) throws(SafeTensorsError) -> TensorInfo {
        guard case .object(let names, let entries) = value else { throw .invalidEntry(path: path, key: key, reason: "entry is not an object") }
        let fields = Dictionary(zip(names, entries), uniquingKeysWith: { first, _ in first })
        guard case .string(let dtypeName)? = fields["dtype"] else { throw .invalidEntry(path: path, key: key, reason: "missing or non-string 'dtype'") }
        guard let dtype = DType(rawValue: dtypeName) else { throw .unknownDType(path: path, key: key, dtype: dtypeName) }
        guard let shape = integers(fields["shape"]) else { throw .invalidEntry(path: path, key: key, reason: "'shape' is not a list of non-negative integers") }
        guard let offsets = integers(fields["data_offsets"]), offsets.count == 2 else {
            throw .invalidEntry(path: path, key: key, reason: "'data_offsets' is not two non-negative integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else { throw .offsetsOutOfRange(path: path, key: key, begin: begin, end: end, dataSize: dataSize) }
        var elements = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .invalidEntry(path: path, key: key, reason: "shape \(shape) overflows") }
            elements = product
        }
        let expected = dtype.byteCount(elements: elements)
        guard expected == end - begin else {
            throw .sizeMismatch(path: path, key: key, dtype: dtypeName, shape: shape, expectedBytes: expected, actualBytes: end - begin)
        }
        return TensorInfo(name: key, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    private static func integers(_ value: JSONValue?) -> [Int]? {
        guard case .array(let elements)? = value else { return nil }
        var result: [Int] = []
        for element in elements {
            guard case .integer(let i) = element, i >= 0 else { return nil }
            result.append(i)
        }
        return result
    }
}
