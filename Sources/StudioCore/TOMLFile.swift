import Foundation
import ImageIO
import RegularFiles
import TOMLKit

/// A problem in a TOML file (theme or config), as one line: `FILE:LINE: what was found and what was expected`.
public struct TOMLFileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A parsed TOML file (TOMLKit 0.6.0, toml++ underneath) with the line of each key, which TOMLKit reports for
/// syntax errors only: unknown keys and bad values are found after parsing, and their lines come from the text.
struct TOMLFile {
    let path: String
    let lines: [Substring]
    let root: TOMLTable

    init(path: String) throws(TOMLFileError) {
        try self.init(path: path, text: Self.text(path))
    }

    /// A settings or theme file's text: a regular file only (a FIFO would block the studio's start), at most 1 MiB.
    static func text(_ path: String) throws(TOMLFileError) -> String {
        do { return String(decoding: try RegularFile.contents(path, limit: 1 << 20, what: "TOML file"), as: UTF8.self) } catch {
            throw TOMLFileError(error.description)
        }
    }

    init(path: String, text: String) throws(TOMLFileError) {
        self.path = path
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw TOMLFileError("\(path):\(error.source.begin.line): \(error.description)")
        } catch {
            throw TOMLFileError("\(path): \(error)")
        }
    }

    /// The 1-based line of `key` inside `[table]` (nil: the top level), or nil when it is not written plainly.
    func line(of key: String, in table: String? = nil) -> Int? {
        var current: String?
        for (index, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                current = line[line.index(after: line.startIndex)..<end].trimmingCharacters(in: .whitespaces)
                if key.isEmpty, current == table { return index + 1 }
                continue
            }
            guard current == table, line.hasPrefix(key) else { continue }
            let rest = line.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }
            if rest.hasPrefix("=") { return index + 1 }
        }
        return nil
    }

    /// An error about `key` in `[table]`, located at its line when it can be found.
    func error(_ key: String, in table: String? = nil, _ message: String) -> TOMLFileError {
        let location = line(of: key, in: table).map { ":\($0)" } ?? ""
        // An array of tables is read as the table "[name": shown as [[name]].
        let shown = table.map { $0.hasPrefix("[") ? "[\($0)]]" : "[\($0)]" }
        let name = key.isEmpty ? shown ?? "[]" : (shown.map { "\($0) " } ?? "") + key
        return TOMLFileError("\(path)\(location): \(name): \(message)")
    }

    /// The keys of a table, in the order they are written (TOMLKit iterates in its own order).
    func orderedKeys(_ table: TOMLTable, in name: String? = nil) -> [String] {
        table.keys.sorted { (line(of: $0, in: name) ?? Int.max, $0) < (line(of: $1, in: name) ?? Int.max, $1) }
    }
}

extension TOMLValueConvertible {
    /// A number as a Double, written with or without a fraction (`7` and `7.0` both).
    var number: Double? { double ?? int.map(Double.init) }

    /// How a value is described in an error.
    var shown: String {
        if let string { return "\"\(string)\"" }
        return debugDescription
    }
}
