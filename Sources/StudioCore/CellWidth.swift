/// How many terminal columns a character takes: 2 for East Asian wide/fullwidth and emoji presentation,
/// 0 for controls, 1 otherwise. Ranges follow Unicode 15 EastAsianWidth.txt (W and F) as wcwidth does,
/// condensed to the blocks that matter; a grapheme is as wide as its first scalar, or 2 when it asks for
/// emoji presentation (U+FE0F) or joins emoji (ZWJ sequences render as one wide glyph).
public enum CellWidth {
    public static func of(_ character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        if first.value < 0x20 || (0x7F..<0xA0).contains(first.value) { return 0 }
        if scalars.count > 1, scalars.contains(where: { $0.value == 0xFE0F || $0.value == 0x200D }) { return 2 }
        if first.properties.isEmojiPresentation { return 2 }
        return isWide(first.value) ? 2 : 1
    }

    public static func of(_ text: some StringProtocol) -> Int {
        text.reduce(0) { $0 + of($1) }
    }

    static func isWide(_ v: UInt32) -> Bool {
        switch v {
        case 0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x2E80...0x303E, 0x3041...0x33FF,
             0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF, 0xA960...0xA97F, 0xAC00...0xD7A3,
             0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
             0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x1FA70...0x1FAFF, 0x20000...0x2FFFD, 0x30000...0x3FFFD:
            return true
        default:
            return false
        }
    }

    /// The longest prefix of `text` that fits in `columns`, for labels and status lines.
    public static func truncate(_ text: String, to columns: Int) -> String {
        var used = 0
        var result = ""
        for c in text {
            let w = of(c)
            if used + w > columns { break }
            used += w
            result.append(c)
        }
        return result
    }
}
