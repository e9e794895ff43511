import RegularFiles

/// Every way a safetensors file or a weight lookup can fail, each naming the file and what was found.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case tooSmall(path: String, size: Int)
    case headerLengthPastEnd(path: String, headerLength: UInt64, fileSize: Int)
    case headerTooLarge(path: String, headerLength: UInt64)
    case invalidHeader(path: String, reason: String)
    case invalidEntry(path: String, key: String, reason: String)
    case unknownDType(path: String, key: String, dtype: String)
    case sizeMismatch(path: String, key: String, dtype: String, shape: [Int], expectedBytes: Int?, actualBytes: Int)
    case offsetsOutOfRange(path: String, key: String, begin: Int, end: Int, dataSize: Int)
    /// The header describes `expectedSize` bytes but the file has `actualSize`: an interrupted download.
    case truncated(path: String, expectedSize: Int, actualSize: Int)
    case overlap(path: String, first: String, second: String)
    case undecodableDType(path: String, key: String, dtype: String)
    case missingKey(path: String, key: String)
    case shapeMismatch(path: String, key: String, expected: [Int], found: [Int])
    case duplicateKey(key: String, firstPath: String, secondPath: String)
    case unusedKeys(path: String, keys: [String], total: Int)
    case writeFailed(path: String, reason: String)
    /// A fused tensor (qkv, a modulation pair) whose first dimension does not split into `parts` equal blocks.
    case indivisible(path: String, key: String, shape: [Int], parts: Int)

    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .tooSmall(path, size): return "\(path): not a safetensors file: \(size) bytes, the 8-byte header length is missing"
        case let .headerLengthPastEnd(path, length, size): return "\(path): header length \(length) runs past the end of the \(size)-byte file (truncated?)"
        case let .headerTooLarge(path, length): return "\(path): header length \(length) exceeds the 100 MB limit"
        case let .invalidHeader(path, reason): return "\(path): invalid header: \(reason)"
        case let .invalidEntry(path, key, reason): return "\(path): tensor '\(key)': \(reason)"
        case let .unknownDType(path, key, dtype): return "\(path): tensor '\(key)' has unknown dtype '\(dtype)'"
        case let .sizeMismatch(path, key, dtype, shape, expected, actual):
            let want = expected.map { "\($0) bytes" } ?? "a whole number of bytes"
            return "\(path): tensor '\(key)' (\(dtype) \(shape)) needs \(want) but its offsets span \(actual)"
        case let .offsetsOutOfRange(path, key, begin, end, size): return "\(path): tensor '\(key)' offsets [\(begin), \(end)) fall outside the \(size)-byte data section"
        case let .truncated(path, expected, actual):
            return "\(path): truncated: its header describes \(expected) bytes but the file has \(actual) (an interrupted download? fetch it again)"
        case let .overlap(path, first, second): return "\(path): tensors '\(first)' and '\(second)' overlap"
        case let .undecodableDType(path, key, dtype): return "\(path): tensor '\(key)' is \(dtype); it cannot be read this way (floats: F32, F16, BF16, F8_E4M3, F8_E5M2; integers: I8–I64, U8–U32)"
        case let .missingKey(path, key): return "\(path): missing weight '\(key)'"
        case let .shapeMismatch(path, key, expected, found): return "\(path): weight '\(key)' has shape \(found), expected \(expected)"
        case let .duplicateKey(key, first, second): return "weight '\(key)' appears in both \(first) and \(second)"
        case let .unusedKeys(path, keys, total):
            return "\(path): \(total) weight\(total == 1 ? "" : "s") not used by the model, e.g. \(keys.prefix(3).map { "'\($0)'" }.joined(separator: ", "))"
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        case let .indivisible(path, key, shape, parts):
            return "\(path): tensor '\(key)' has shape \(shape), whose first dimension does not split into \(parts) equal parts"
        }
    }
}
