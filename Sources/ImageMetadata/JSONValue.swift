/// A JSON document as the readers need it (RFC 8259): objects keep their keys in file order, numbers keep their
/// text, so `0.8700000000000001` reads back as that double (Swift's `Double(String)` rounds correctly) and a seed
/// past 2⁵³ keeps every digit. Nesting is limited, so hostile input cannot exhaust the stack.
indirect enum JSONValue: Equatable, Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(x), .array(y)): return x == y
        case let (.string(x), .string(y)), let (.number(x), .number(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    /// The deepest nesting read (ComfyUI graphs and InvokeAI metadata are a few levels deep).
    static let depthLimit = 200

    /// The value `text` holds, or nil when it is not one complete JSON value.
    static func parse(_ text: String) -> JSONValue? {
        var parser = Parser(bytes: Array(text.utf8))
        guard let value = parser.value(depth: 0) else { return nil }
        parser.skipSpace()
        return parser.index == parser.bytes.count ? value : nil
    }

    subscript(key: String) -> JSONValue? {
        guard case let .object(pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    var object: [(String, JSONValue)]? { if case let .object(pairs) = self { pairs } else { nil } }
    var array: [JSONValue]? { if case let .array(items) = self { items } else { nil } }
    var string: String? { if case let .string(s) = self { s } else { nil } }
    var bool: Bool? { if case let .bool(b) = self { b } else { nil } }

    /// A number, or a string that is one (A1111-style tools often write numbers as strings).
    var double: Double? {
        switch self {
        // 1e400 parses as infinity: no number, as NaN and Infinity are.
        case let .number(text): return Double(text).flatMap { $0.isFinite ? $0 : nil }
        case let .string(text): return Double(text.trimmingSpaces).flatMap { $0.isFinite ? $0 : nil }
        default: return nil
        }
    }

    /// A whole number that fits: `20`, `20.0` or `"20"`; nil for a fraction or a number out of range.
    var int: Int? {
        guard let text = numberText else { return nil }
        if let exact = Int(text) { return exact }
        guard let d = Double(text), d == d.rounded(), abs(d) < 0x1p53 else { return nil }
        return Int(d)
    }

    /// A seed: 0…2⁶⁴−1 with its exact digits; a fraction, a negative number or one past 2⁶⁴−1 is no seed.
    var seed: UInt64? {
        guard let text = numberText else { return nil }
        if let exact = UInt64(text) { return exact }
        guard let d = Double(text), d >= 0, d == d.rounded(), d < 0x1p53 else { return nil }
        return UInt64(d)
    }

    private var numberText: String? {
        switch self {
        case let .number(text): return text
        case let .string(text): return text.trimmingSpaces
        default: return nil
        }
    }

    /// The value as text for an `extra` pair: strings as they are, numbers as written, the rest as compact JSON.
    var text: String {
        switch self {
        case let .string(s): return s
        case let .number(n): return n
        case let .bool(b): return b ? "true" : "false"
        case .null: return "null"
        case let .array(items): return "[" + items.map(\.json).joined(separator: ", ") + "]"
        case let .object(pairs): return "{" + pairs.map { JSONValue.string($0.0).json + ": " + $0.1.json }.joined(separator: ", ") + "}"
        }
    }

    private var json: String {
        guard case let .string(s) = self else { return text }
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16) }
                else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(depth: Int) -> JSONValue? {
            guard depth < JSONValue.depthLimit else { return nil }
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var pairs: [(String, JSONValue)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(pairs) }
                while true {
                    skipSpace()
                    guard let key = string(), expect(":"), let v = value(depth: depth + 1) else { return nil }
                    pairs.append((key, v))
                    skipSpace()
                    if expect(",") { continue }
                    return expect("}") ? .object(pairs) : nil
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [JSONValue] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                while true {
                    guard let v = value(depth: depth + 1) else { return nil }
                    items.append(v)
                    skipSpace()
                    if expect(",") { continue }
                    return expect("]") ? .array(items) : nil
                }
            case UInt8(ascii: "\""): return string().map(JSONValue.string)
            case UInt8(ascii: "t"): return word("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return word("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return word("null") ? .null : nil
            // Python's json.dumps writes NaN and Infinity for non-finite floats; they are read as no number.
            case UInt8(ascii: "N"): return word("NaN") ? .null : nil
            case UInt8(ascii: "I"): return word("Infinity") ? .null : nil
            default: return number()
            }
        }

        mutating func expect(_ c: Character) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == c.asciiValue! else { return false }
            index += 1
            return true
        }

        mutating func word(_ w: String) -> Bool {
            let w = Array(w.utf8)
            guard bytes.count - index >= w.count, bytes[index..<index + w.count].elementsEqual(w) else { return false }
            index += w.count
            return true
        }

        mutating func number() -> JSONValue? {
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1; if word("Infinity") { return .null } }
            func digits() -> Int {
                let from = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                return index - from
            }
            guard digits() > 0 else { return nil }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") { index += 1; guard digits() > 0 else { return nil } }
            if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { return nil }
            }
            return .number(String(decoding: bytes[start..<index], as: UTF8.self))
        }

        mutating func string() -> String? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                let b = bytes[index]
                index += 1
                if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                guard b == UInt8(ascii: "\\") else { out.append(b); continue }
                guard index < bytes.count else { return nil }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard var code = hex4() else { return nil }
                    // A UTF-16 surrogate pair (\uD83D\uDE00); a lone surrogate becomes U+FFFD.
                    if (0xD800..<0xDC00).contains(code), bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                        index += 2
                        guard let low = hex4() else { return nil }
                        code = (0xDC00..<0xE000).contains(low) ? 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                    }
                    out += Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                default: out.append(e)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard bytes.count - index >= 4, let v = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else { return nil }
            index += 4
            return v
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
