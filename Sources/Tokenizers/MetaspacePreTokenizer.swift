/// transformers 5.24 `T5Tokenizer`'s pre-tokenizer, built in code (`models/t5/tokenization_t5.py`):
/// `Sequence([WhitespaceSplit(), Metaspace(replacement="▁", prepend_scheme="always", split=True)])`.
///
/// WhitespaceSplit drops every run of White_Space (Rust's `char::is_whitespace`); Metaspace then turns spaces
/// into "▁" (none are left), prepends "▁" to a word that does not already start with one, and splits the word
/// before every "▁" (`SplitDelimiterBehavior::MergedWithNext`: "▁▁x" → "▁", "▁x"; "x▁" would give "x", "▁").
/// This replaces SentencePiece's own `add_dummy_prefix` and `remove_extra_whitespaces`: a tokenizer.json or
/// spiece.model that says otherwise is ignored by transformers 5.24, and so here.
enum MetaspacePreTokenizer {
    static let replacement: [UInt8] = Array("\u{2581}".utf8)

    /// The words of normalized text, as UTF-8 bytes each starting with "▁" except after a split inside a word.
    static func words(_ normalized: String) -> [[UInt8]] {
        var words: [[UInt8]] = []
        var current: [UInt8] = []
        func finishWord() {
            guard !current.isEmpty else { return }
            if !current.starts(with: replacement) { current.insert(contentsOf: replacement, at: 0) }
            splitBeforeReplacement(current, into: &words)
            current.removeAll(keepingCapacity: true)
        }
        for scalar in normalized.unicodeScalars {
            if UnicodeClasses.isWhitespace(scalar) {
                finishWord()
            } else {
                current.append(contentsOf: UTF8.encode(scalar))
            }
        }
        finishWord()
        return words
    }

    private static func splitBeforeReplacement(_ word: [UInt8], into words: inout [[UInt8]]) {
        var start = 0
        var index = replacement.count  // the word starts with "▁"
        while index + replacement.count <= word.count {
            if word[index] == replacement[0], word[index + 1] == replacement[1], word[index + 2] == replacement[2] {
                words.append(Array(word[start..<index]))
                start = index
                index += replacement.count
            } else {
                index += 1
            }
        }
        words.append(Array(word[start...]))
    }
}

extension UTF8 {
    /// The UTF-8 bytes of one scalar.
    static func encode(_ scalar: Unicode.Scalar) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        UTF8.encode(scalar) { bytes.append($0) }
        return bytes
    }
}
