/// The character classes the reference tokenizers test, over Unicode scalars.
///
/// huggingface/tokenizers (the backend of transformers 5.24) evaluates its `Split`/`Replace` patterns with the
/// Oniguruma engine (`onig` is a default feature of the crate and of the Python wheel), its `WhitespaceSplit` with
/// Rust's `char::is_whitespace`, and its added-token word checks with the `regex` crate. Swift 6.3's tables are
/// Unicode 17, the Oniguruma in tokenizers 0.23.3 has Unicode 16: a letter or digit first assigned in Unicode 17
/// is unassigned (neither `\p{L}` nor `\p{N}`) there. `Tests/TokenizersTests/UnicodeClassTests.swift` compares every
/// code point against the classes probed from tokenizers itself (`Fixtures/unicode.json`).
enum UnicodeClasses {
    /// Oniguruma `\p{L}`: General_Category L (Lu, Ll, Lt, Lm, Lo) as of Unicode 16.
    static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return isASCIILetter(UInt8(scalar.value)) }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return isAssignedInOniguruma(scalar)
        default: return false
        }
    }

    /// Oniguruma `\p{N}`: General_Category N (Nd, Nl, No) as of Unicode 16.
    static func isNumber(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return scalar.value >= 0x30 && scalar.value <= 0x39 }
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return isAssignedInOniguruma(scalar)
        default: return false
        }
    }

    /// Whether the scalar was assigned by Unicode 16, the version of tokenizers' Oniguruma tables.
    private static func isAssignedInOniguruma(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major <= 16
    }

    /// Oniguruma `\s` on Unicode text: U+0009–U+000D, U+0085 and General_Category Zs, Zl, Zp — the White_Space set.
    /// Rust's `char::is_whitespace` and the `regex` crate's `\s` are White_Space too, so one test serves all three.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        return scalar.properties.isWhitespace
    }

    /// The `regex` crate's Unicode `\w` (used by tokenizers' `single_word` added-token check):
    /// Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 {
            let byte = UInt8(scalar.value)
            return isASCIILetter(byte) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F
        }
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// Python's `str.isspace` (used by `str.strip()` in transformers' CLIP decode): White_Space plus the
    /// information separators U+001C–U+001F, which Python counts as whitespace (bidirectional class B or S).
    static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value >= 0x1C && scalar.value <= 0x1F) || isWhitespace(scalar)
    }

    private static func isASCIILetter(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }
}
