import Foundation

/// Prompts read from a file: one per line, lines split on "\n" only (a "\r" stays part of its line),
/// each checked as UTF-8 so a bad byte is reported with its line instead of being replaced.
public enum TextInputs {
    public struct Error: Swift.Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public static func lines(of path: String) throws(Error) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Error(description: "\(path): cannot read the file") }
        return try lines(of: [UInt8](data), name: path)
    }

    public static func lines(of bytes: [UInt8], name: String) throws(Error) -> [String] {
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }  // a final newline ends the last line; it adds no input
        var result: [String] = []
        for (number, line) in lines.enumerated() {
            guard let text = String(validating: line, as: UTF8.self) else { throw Error(description: "\(name):\(number + 1): not valid UTF-8") }
            result.append(text)
        }
        return result
    }
}
