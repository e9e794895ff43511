import Foundation

/// JSON written by hand (safetensors headers, ComfyUI workflows): strings quoted per RFC 8259 §7, the quote, the
/// backslash and control characters escaped, everything else kept as UTF-8.
public enum JSONText {
    public static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
