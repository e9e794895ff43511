import Foundation

/// The names a pull turns into paths: file names and commits from the hub's answer, the revision and repo id from the
/// user. Each is checked as a whole string of Unicode scalars, before any path is formed: Foundation hands paths to the
/// C library, which stops at the first NUL, so "..\u{0}x" would reach the file system as "..".
public enum HubNames {
    /// A component longer than this is refused by the usual file systems (NAME_MAX on ext4, XFS, APFS).
    static let maxComponentBytes = 255
    static let maxPathBytes = 1024

    /// A relative path that stays inside the snapshot folder on every platform: components of printable characters,
    /// none empty, "." or "..", no backslash (a separator on Windows), no drive prefix ("C:"), no leading "/".
    /// Components are split on the byte "/", as the file system splits them: String's own `split` and `hasPrefix`
    /// work on grapheme clusters, where "/" followed by a combining mark (U+0301) is not "/", so "../\u{301}x" would
    /// pass as one harmless component.
    public static func isSafeFile(_ path: String) -> Bool {
        guard !path.isEmpty, path.utf8.count <= maxPathBytes, path.utf8.first != slash else { return false }
        guard path.unicodeScalars.allSatisfy({ !isControl($0) && $0 != "\\" }) else { return false }
        let components = components(path)
        if let first = components.first, isDrive(first) { return false }
        return components.allSatisfy { component in
            !component.isEmpty && component != [dot] && component != [dot, dot] && component.count <= maxComponentBytes
        }
    }

    /// A branch or tag name as `git check-ref-format` allows it, narrowed to what the hub uses (`main`, `v1.0`,
    /// `refs/pr/12`), or a 40-hex commit. It becomes `refs/<revision>` in the cache, so no component may climb out.
    public static func isRevision(_ revision: String) -> Bool {
        if isHex(revision, count: 40) { return true }
        guard !revision.isEmpty, revision.utf8.count <= maxComponentBytes else { return false }
        guard revision.unicodeScalars.allSatisfy({ isASCIIAlphanumeric($0) || "-_./+".unicodeScalars.contains($0) }) else { return false }
        // ASCII only from here, so String's character operations see the bytes.
        return components(revision).allSatisfy { component in
            let text = String(decoding: component, as: UTF8.self)
            return !text.isEmpty && !text.hasPrefix(".") && !text.hasSuffix(".") && !text.hasSuffix(".lock") && !text.contains("..")
        }
    }

    /// The UTF-8 bytes of each "/"-separated component, empty ones included.
    static func components(_ path: String) -> [ArraySlice<UInt8>] {
        Array(path.utf8).split(separator: slash, omittingEmptySubsequences: false)
    }

    private static let slash = UInt8(ascii: "/")
    private static let dot = UInt8(ascii: ".")

    /// `ORG/NAME` as the hub spells repo ids: ASCII letters, digits, "-", "_", "."; neither part starting with ".".
    public static func isRepoID(_ text: String) -> Bool {
        // ASCII only first, so String's character operations below see the bytes.
        guard text.unicodeScalars.allSatisfy({ isASCIIAlphanumeric($0) || "-_./".unicodeScalars.contains($0) }) else { return false }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { part in
            !part.isEmpty && part.utf8.count <= 96 && !part.hasPrefix(".") && !part.contains("..")
        }
    }

    /// Lowercase or uppercase ASCII hex of exactly `count` digits (Character.isHexDigit would also take fullwidth digits).
    static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) || ("A"..."F").contains($0) }
    }

    /// A name as an error line shows it: quoted, with control characters escaped so the line stays one line.
    static func shown(_ text: String) -> String {
        var out = "'"
        for scalar in text.unicodeScalars.prefix(200) {
            out += isControl(scalar) ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }
        return out + (text.unicodeScalars.count > 200 ? "…'" : "'")
    }

    /// C0, DEL and C1 controls, plus the line and paragraph separators that terminals break lines on.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    static func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    private static func isDrive(_ component: ArraySlice<UInt8>) -> Bool {
        let bytes = Array(component.prefix(2))
        let letter = (bytes.first ?? 0) | 0x20
        return bytes.count == 2 && bytes[1] == UInt8(ascii: ":") && letter >= UInt8(ascii: "a") && letter <= UInt8(ascii: "z")
    }
}
