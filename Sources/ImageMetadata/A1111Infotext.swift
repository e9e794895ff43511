import Foundation

/// The scanner of A1111's settings line (modules/infotext_utils.py `re_param`; peers.md §4), shared by the readers of
/// text in its layout (A1111Reader: A1111/Forge, stable-diffusion.cpp and ours).
enum A1111Infotext {
    /// The `Key: value` pairs of A1111's last infotext line, as its `re_param` finds them
    /// (`\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`, searched left to right), by a scanner that reads
    /// each character a bounded number of times: the regex, tried at every start inside a long run of words
    /// with no colon, re-read the run from each start (10,000 words took 7.5 s, 40,000 over a minute).
    static func pairs(_ line: String) -> [RecalledParameters.Pair] {
        let text = Array(line.unicodeScalars)
        let n = text.count
        // keyEnd[i]: where the run of key characters [\w \-/] starting at i ends; spaceEnd[i]: the first non-\s at or after i.
        var keyEnd = [Int](repeating: n, count: n + 1), spaceEnd = [Int](repeating: n, count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            keyEnd[i] = isKey(text[i]) ? keyEnd[i + 1] : i
            spaceEnd[i] = isSpace(text[i]) ? spaceEnd[i + 1] : i
        }
        var found: [RecalledParameters.Pair] = []
        var start = 0
        while start < n {
            // A match at `start`: spaces, a word character, at least one more key character, then a colon.
            let key = spaceEnd[start], colon = keyEnd[key]
            guard key < n, isWord(text[key]), colon - key >= 2, colon < n, text[colon] == ":" else {
                start += 1
                continue
            }
            let valueStart = spaceEnd[colon + 1]
            let (valueEnd, matchEnd) = quotedValue(text, from: valueStart) ?? plainValue(text, from: valueStart)
            let name = String(String.UnicodeScalarView(text[key..<colon])).trimmingCharacters(in: .whitespaces)
            var value = String(String.UnicodeScalarView(text[valueStart..<valueEnd])).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), let decoded = try? JSONDecoder().decode(String.self, from: Data(value.utf8)) { value = decoded }
            found.append(RecalledParameters.Pair(name, value))
            start = matchEnd
        }
        return found
    }

    /// `"(?:\\.|[^\\"])+"` followed by `,` or the end: the value's end and the match's end, or nil when it is not one.
    static func quotedValue(_ text: [Unicode.Scalar], from start: Int) -> (Int, Int)? {
        guard start < text.count, text[start] == "\"" else { return nil }
        var i = start + 1
        while i < text.count, text[i] != "\"" {
            if text[i] == "\\" {
                // `.` matches any character but a line terminator.
                guard i + 1 < text.count, !isLineTerminator(text[i + 1]) else { return nil }
                i += 2
            } else {
                i += 1
            }
        }
        guard i < text.count, i > start + 1 else { return nil }
        let end = i + 1
        if end == text.count { return (end, end) }
        if text[end] == "," { return (end, end + 1) }
        // ICU's `$` also matches before a line terminator that ends the text.
        if end + 1 == text.count, isLineTerminator(text[end]) { return (end, end) }
        return nil
    }

    /// `[^,]*` then `,` or the end.
    static func plainValue(_ text: [Unicode.Scalar], from start: Int) -> (Int, Int) {
        var i = start
        while i < text.count, text[i] != "," { i += 1 }
        return i < text.count ? (i, i + 1) : (i, i)
    }

    /// ICU's `\w`: alphabetic, marks, decimal digits, connector punctuation, ZWJ/ZWNJ.
    static func isWord(_ c: Unicode.Scalar) -> Bool {
        if c.properties.isAlphabetic || c.value == 0x200C || c.value == 0x200D { return true }
        switch c.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// `[\w \-/]`.
    static func isKey(_ c: Unicode.Scalar) -> Bool { c == " " || c == "-" || c == "/" || isWord(c) }

    /// ICU's `\s`: Unicode White_Space (tab to carriage return, space, NEL, no-break and other spaces, separators).
    static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

    static func isLineTerminator(_ c: Unicode.Scalar) -> Bool {
        [0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029].contains(c.value)
    }
}
