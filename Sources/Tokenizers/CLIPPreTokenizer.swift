import Foundation

/// The text pipeline of transformers 5.24's `CLIPTokenizer` in front of its BPE model
/// (`models/clip/tokenization_clip.py`, which builds it in code — a tokenizer.json cannot change it).
///
/// Normalizer: `Sequence([NFC(), Replace(Regex(r"\s+"), " "), Lowercase()])`. There is no strip, unlike the
/// spec's summary; leading and trailing spaces vanish in the split anyway.
/// Pre-tokenizer: `Split(pattern, behavior="removed", invert=True)` keeping the matches of
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`, then
/// `ByteLevel(add_prefix_space=False)`, whose `use_regex` defaults to true: every piece is split again by GPT-2's
/// pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`. That second split only
/// changes the special-token pieces: "<|endoftext|>" typed in lower or upper case reaches BPE as "<|",
/// "endoftext", "|>". The pattern is case-sensitive in tokenizers (the original CLIP used re.IGNORECASE); after
/// lowercasing that makes no difference. Both patterns are matched here by hand, leftmost-first as Oniguruma.
enum CLIPPreTokenizer {
    /// NFC, every run of `\s` to one space, then each scalar lowercased on its own.
    static func normalize(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var previousWasSpace = false
        for scalar in nfc(text).unicodeScalars {
            if UnicodeClasses.isWhitespace(scalar) {
                if !previousWasSpace { result.append(" ") }
                previousWasSpace = true
                continue
            }
            previousWasSpace = false
            appendLowercased(scalar, to: &result)
        }
        return String(result)
    }

    /// Unicode NFC from the standard library (`String._nfcCodeUnits`, the normalization behind String
    /// comparison), not from Foundation: `precomposedStringWithCanonicalMapping` on Linux composes the tag
    /// character U+E0059 with a following U+0301 into "ý" (U+00FD), which NFC does not do.
    static func nfc(_ text: String) -> String {
        String(decoding: text._nfcCodeUnits, as: UTF8.self)
    }

    /// Rust's `char::to_lowercase`, as tokenizers' `NormalizedString::lowercase` applies it to each scalar alone:
    /// full mappings such as İ → i̇, and no final-sigma context (Σ is always σ).
    static func appendLowercased(_ scalar: Unicode.Scalar, to result: inout String.UnicodeScalarView) {
        let value = scalar.value
        if value < 0x80 {
            result.append((value >= 0x41 && value <= 0x5A) ? Unicode.Scalar(value + 0x20)! : scalar)
        } else {
            result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        }
    }

    /// The words BPE sees, as UTF-8 bytes, for one normalized piece of text.
    static func words(_ normalized: String) -> [[UInt8]] {
        let scalars = Array(normalized.unicodeScalars)
        var words: [[UInt8]] = []
        for piece in clipPieces(scalars) {
            for word in gpt2Pieces(scalars[piece]) {
                var bytes: [UInt8] = []
                for scalar in scalars[word] { bytes.append(contentsOf: UTF8.encode(scalar)) }
                words.append(bytes)
            }
        }
        return words
    }

    /// The matches of CLIP's split pattern; whatever no alternative matches (whitespace) is dropped.
    static func clipPieces(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if UnicodeClasses.isWhitespace(scalar) {
                index += 1
                continue
            }
            let length: Int
            if let special = specialLength(scalars, at: index) {
                length = special
            } else if let contraction = contractionLength(scalars, at: index) {
                length = contraction
            } else if UnicodeClasses.isLetter(scalar) {
                length = runLength(scalars, from: index, where: UnicodeClasses.isLetter)
            } else if UnicodeClasses.isNumber(scalar) {
                length = 1
            } else {
                length = runLength(scalars, from: index, where: isOther)
            }
            pieces.append(index..<(index + length))
            index += length
        }
        return pieces
    }

    /// GPT-2's pattern over one piece, which holds no whitespace, so the optional leading space and the
    /// whitespace alternatives never apply.
    static func gpt2Pieces(_ piece: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var index = piece.startIndex
        while index < piece.endIndex {
            let scalar = piece[index]
            let length: Int
            if let contraction = contractionLength(piece, at: index) {
                length = contraction
            } else if UnicodeClasses.isLetter(scalar) {
                length = runLength(piece, from: index, where: UnicodeClasses.isLetter)
            } else if UnicodeClasses.isNumber(scalar) {
                length = runLength(piece, from: index, where: UnicodeClasses.isNumber)
            } else if UnicodeClasses.isWhitespace(scalar) {
                length = runLength(piece, from: index, where: UnicodeClasses.isWhitespace)
            } else {
                length = runLength(piece, from: index, where: isOther)
            }
            pieces.append(index..<(index + length))
            index += length
        }
        return pieces
    }

    private static let specialTokens: [[Unicode.Scalar]] = ["<|startoftext|>", "<|endoftext|>"].map {
        Array($0.unicodeScalars)
    }
    private static let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map {
        Array($0.unicodeScalars)
    }

    private static func specialLength<C: RandomAccessCollection<Unicode.Scalar>>(_ scalars: C, at index: C.Index) -> Int?
    where C.Index == Int {
        guard scalars[index] == "<" else { return nil }
        return specialTokens.first { hasPrefix(scalars, $0, at: index) }?.count
    }

    private static func contractionLength<C: RandomAccessCollection<Unicode.Scalar>>(_ scalars: C, at index: C.Index)
        -> Int? where C.Index == Int {
        guard scalars[index] == "'" else { return nil }
        return contractions.first { hasPrefix(scalars, $0, at: index) }?.count
    }

    private static func hasPrefix<C: RandomAccessCollection<Unicode.Scalar>>(
        _ scalars: C, _ prefix: [Unicode.Scalar], at index: Int
    ) -> Bool where C.Index == Int {
        guard scalars.endIndex - index >= prefix.count else { return false }
        for offset in 0..<prefix.count where scalars[index + offset] != prefix[offset] { return false }
        return true
    }

    private static func runLength<C: RandomAccessCollection<Unicode.Scalar>>(
        _ scalars: C, from index: Int, where belongs: (Unicode.Scalar) -> Bool
    ) -> Int where C.Index == Int {
        var end = index
        while end < scalars.endIndex && belongs(scalars[end]) { end += 1 }
        return end - index
    }

    /// `[^\s\p{L}\p{N}]`
    private static func isOther(_ scalar: Unicode.Scalar) -> Bool {
        !UnicodeClasses.isWhitespace(scalar) && !UnicodeClasses.isLetter(scalar) && !UnicodeClasses.isNumber(scalar)
    }
}
