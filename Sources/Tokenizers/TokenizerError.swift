import RegularFiles

/// Why a tokenizer folder could not be read; each case names the file.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case missingFile(path: String)
    case invalidFile(path: String, reason: String)
    case wrongKind(path: String, expected: String, found: String)

    /// One line, whatever the file held (a tokenizer_class with a newline quoted in `found`).
    public var description: String {
        switch self {
        case let .missingFile(path): return "\(path): missing tokenizer file".oneLine
        case let .invalidFile(path, reason): return "\(path): \(reason)".oneLine
        case let .wrongKind(path, expected, found): return "\(path): expected a \(expected) tokenizer, found \(found)".oneLine
        }
    }
}
