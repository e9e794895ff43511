import Foundation
import Testing
@testable import Tokenizers

/// Every code point against tokenizers itself (Fixtures/unicode.json): catches a Unicode-version difference
/// between Swift's tables and tokenizers' Oniguruma, case mapping, normalization and charsmap.
@Suite struct UnicodeClassTests {
    static let allScalars: [Unicode.Scalar] = (0...0x10FFFF).compactMap { Unicode.Scalar(UInt32($0)) }

    @Test(arguments: ["L", "N", "s"])
    func regexClassMatchesOniguruma(_ name: String) {
        let expected = Fixtures.unicode.members(name)
        #expect(expected.count > 20)
        let test: (Unicode.Scalar) -> Bool = switch name {
        case "L": UnicodeClasses.isLetter
        case "N": UnicodeClasses.isNumber
        default: UnicodeClasses.isWhitespace
        }
        let differences = Self.allScalars.filter { test($0) != expected.contains($0.value) }.map(\.value)
        #expect(differences.isEmpty, "\\p{\(name)} differs at \(describeRanges(differences))")
    }

    /// Lowercase is per scalar, with full mappings (tokenizers' `NormalizedString::lowercase`).
    @Test func lowercaseMatchesTokenizers() {
        let expected = Fixtures.unicode.lowercase
        #expect(expected.count > 1000)
        var differences: [UInt32] = []
        for scalar in Self.allScalars {
            var got = String.UnicodeScalarView()
            CLIPPreTokenizer.appendLowercased(scalar, to: &got)
            let want = expected[String(scalar.value)] ?? String(Character(scalar))
            if !got.elementsEqual(want.unicodeScalars) { differences.append(scalar.value) }
        }
        #expect(differences.isEmpty, "lowercase differs at \(describeRanges(differences))")
    }

    /// NFC of each code point that NFD or NFC changes, and NFC of its NFD (recomposition).
    @Test func nfcMatchesTokenizers() {
        let expected = Fixtures.unicode.nfdNfc
        #expect(expected.count > 2000)
        var differences: [UInt32] = []
        for (key, forms) in expected {
            let value = UInt32(key)!
            let single = CLIPPreTokenizer.nfc(String(Character(Unicode.Scalar(value)!)))
            let recomposed = CLIPPreTokenizer.nfc(forms[0])
            if !single.unicodeScalars.elementsEqual(forms[1].unicodeScalars)
                || !recomposed.unicodeScalars.elementsEqual(forms[1].unicodeScalars) {
                differences.append(value)
            }
        }
        #expect(differences.isEmpty, "NFC differs at \(describeRanges(differences.sorted()))")
        // Foundation's precomposedStringWithCanonicalMapping turns this pair into "ý" on Linux; NFC keeps it.
        #expect(CLIPPreTokenizer.nfc("\u{E0059}\u{301}").unicodeScalars.map(\.value) == [0xE0059, 0x301])
        #expect(CLIPPreTokenizer.nfc("e\u{301}\u{1100}\u{1161}\u{11A8}") == "é각")
    }

    /// Each code point alone through the T5 Precompiled normalizer: the ones tokenizers changes, to what it
    /// changes them, and no others.
    @Test func precompiledCharsmapOnEveryCodePoint() throws {
        let charsmap = try #require(Fixtures.t5.charsmap)
        let expected = Fixtures.unicode.precompiledSingleCodepoints
        #expect(expected.count > 1000)
        var differences: [UInt32] = []
        for scalar in Self.allScalars {
            let text = String(Character(scalar))
            let want = expected[String(scalar.value)] ?? text
            if !charsmap.normalize(text).unicodeScalars.elementsEqual(want.unicodeScalars) {
                differences.append(scalar.value)
            }
        }
        #expect(differences.isEmpty, "Precompiled differs at \(describeRanges(differences))")
    }
}
