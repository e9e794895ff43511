/// Text operations that compare Unicode scalars literally, as Python's `str` methods do. Swift's `String`
/// compares by canonical equivalence and by grapheme cluster, which would treat "</w>" followed by a combining
/// mark, or ">" + U+0338 ("≯"), differently from Python.
enum ScalarText {
    /// Python's `str.replace`: non-overlapping occurrences, left to right.
    static func replacing(_ target: String, with replacement: String, in text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let target = Array(target.unicodeScalars)
        let replacement = Array(replacement.unicodeScalars)
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            if index + target.count <= text.count, text[index..<(index + target.count)].elementsEqual(target) {
                result += replacement
                index += target.count
            } else {
                result.append(text[index])
                index += 1
            }
        }
        return result
    }

    /// Python's `str.strip()` with no argument.
    static func pythonStripped(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let start = text.firstIndex(where: { !UnicodeClasses.isPythonWhitespace($0) }),
              let last = text.lastIndex(where: { !UnicodeClasses.isPythonWhitespace($0) }) else { return [] }
        return Array(text[start...last])
    }

    static func string(_ scalars: [Unicode.Scalar]) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
