import Foundation
import SafeTensors

/// A JSON value we write (workflows, request bodies), serialised with its object keys in the order given, so a workflow
/// is the same bytes every time (recorded exchanges compare equal).
public indirect enum JSON: Equatable, Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case object([(String, JSON)])
    case array([JSON])
    case string(String)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case bool(Bool)
    case null

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .integer(Int64(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    public static func == (a: JSON, b: JSON) -> Bool { a.text == b.text }

    public var text: String {
        switch self {
        case let .object(pairs): return "{" + pairs.map { JSONText.quoted($0.0) + ": " + $0.1.text }.joined(separator: ", ") + "}"
        case let .array(items): return "[" + items.map(\.text).joined(separator: ", ") + "]"
        case let .string(value): return JSONText.quoted(value)
        case let .integer(value): return String(value)
        case let .unsigned(value): return String(value)
        case let .number(value):
            // Whole numbers keep a ".0" so ComfyUI's FLOAT inputs read them as floats, as its own UI sends them.
            guard value.isFinite else { return "null" }
            return value == value.rounded() && abs(value) < 1e15 ? String(format: "%.1f", value) : "\(value)"
        case let .bool(value): return value ? "true" : "false"
        case .null: return "null"
        }
    }

    var bytes: [UInt8] { Array(text.utf8) }
}

/// Reading what a server sends: JSONSerialization's values, looked into by key without force casts.
struct Received {
    let value: Any?

    init(_ value: Any?) { self.value = value }

    init(parsing bytes: [UInt8]) {
        value = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }

    subscript(key: String) -> Received { Received((value as? [String: Any])?[key]) }
    subscript(index: Int) -> Received {
        guard let array = value as? [Any], array.indices.contains(index) else { return Received(nil) }
        return Received(array[index])
    }

    var string: String? { value as? String }
    var int: Int? {
        guard let number = value as? NSNumber else { return nil }
        let double = number.doubleValue
        return double.isFinite && double == double.rounded() && abs(double) < 9e15 ? Int(double) : nil
    }
    var double: Double? {
        guard let number = value as? NSNumber else { return nil }
        return number.doubleValue
    }
    var array: [Received]? { (value as? [Any]).map { $0.map(Received.init) } }
    var object: [String: Received]? { (value as? [String: Any]).map { $0.mapValues(Received.init) } }
    var isNull: Bool { value == nil || value is NSNull }
}
