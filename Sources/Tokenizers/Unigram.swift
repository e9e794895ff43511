/// SentencePiece's unigram model as tokenizers runs it (`models/unigram/model.rs`, `encode_optimized`, with
/// `fuse_unk` true and no byte fallback — transformers 5.24's `T5Tokenizer` builds it that way).
///
/// Viterbi over the UTF-8 bytes of one pre-tokenized word: from each character start, every vocabulary piece
/// that prefixes the rest (trie common-prefix search, shortest first) proposes `best[start] + score`; a position
/// keeps the first proposal unless a later one is strictly greater. A character that no single-character piece
/// covers also gets an unknown edge scored `min_score - 10` (`K_UNK_PENALTY`). Backtracking fuses runs of
/// unknown pieces into one string; each result string then maps to its vocabulary id, or the unknown id.
struct Unigram: Sendable {
    static let unknownPenalty = 10.0

    /// Pieces as UTF-8 bytes, and their scores (f32 in SentencePiece, read as f64 as tokenizers does).
    let pieces: [[UInt8]]
    let scores: [Double]
    let unknownId: Int
    let minimumScore: Double
    private let trie: ByteTrie

    /// A piece that appears twice keeps the later id, as tokenizers' `token_to_ids` map does.
    init(pieces: [[UInt8]], scores: [Double], unknownId: Int) {
        self.pieces = pieces
        self.scores = scores
        self.unknownId = unknownId
        minimumScore = scores.min() ?? 0
        var trie = ByteTrie()
        for (id, piece) in pieces.enumerated() { trie.insert(piece, value: id) }
        self.trie = trie
    }

    /// The id of a piece spelled exactly `bytes`.
    func id(of bytes: [UInt8]) -> Int? {
        var found: Int?
        bytes.withUnsafeBufferPointer { buffer in
            trie.forEachPrefix(of: buffer, from: 0) { length, value in
                if length == buffer.count { found = value }
            }
        }
        return found
    }

    /// The ids of one word (its UTF-8 bytes, e.g. "▁photo").
    func encode(_ word: [UInt8]) -> [Int] {
        if word.isEmpty { return [] }
        let size = word.count
        let unknownScore = minimumScore - Self.unknownPenalty
        var bestScore = [Double](repeating: 0, count: size + 1)
        var bestStart = [Int](repeating: -1, count: size + 1)
        var bestId = [Int](repeating: 0, count: size + 1)
        word.withUnsafeBufferPointer { bytes in
            var start = 0
            while start < size {
                let scoreHere = bestScore[start]
                let characterLength = Self.utf8Length(leadByte: bytes[start])
                var hasSingleCharacterPiece = false
                trie.forEachPrefix(of: bytes, from: start) { length, id in
                    let end = start + length
                    let candidate = scores[id] + scoreHere
                    if bestStart[end] < 0 || candidate > bestScore[end] {
                        bestScore[end] = candidate
                        bestStart[end] = start
                        bestId[end] = id
                    }
                    if length == characterLength { hasSingleCharacterPiece = true }
                }
                if !hasSingleCharacterPiece {
                    let end = min(start + characterLength, size)
                    let candidate = unknownScore + scoreHere
                    if bestStart[end] < 0 || candidate > bestScore[end] {
                        bestScore[end] = candidate
                        bestStart[end] = start
                        bestId[end] = unknownId
                    }
                }
                start += characterLength
            }
        }

        // Backtrack; consecutive unknown pieces become one range.
        var ranges: [Range<Int>] = []
        var unknownRunStart: Int?
        var unknownRunEnd = 0
        var end = size
        while end > 0 {
            let start = bestStart[end]
            if bestId[end] == unknownId {
                if unknownRunStart == nil { unknownRunEnd = end }
                unknownRunStart = start
            } else {
                if let runStart = unknownRunStart {
                    ranges.append(runStart..<unknownRunEnd)
                    unknownRunStart = nil
                }
                ranges.append(start..<end)
            }
            end = start
        }
        if let runStart = unknownRunStart { ranges.append(runStart..<unknownRunEnd) }
        return ranges.reversed().map { range in id(of: Array(word[range])) ?? unknownId }
    }

    /// Bytes in the UTF-8 character that starts with `leadByte` (Rust's `len_utf8` of the next char).
    private static func utf8Length(leadByte: UInt8) -> Int {
        switch leadByte {
        case 0..<0x80: return 1
        case 0xC0..<0xE0: return 2
        case 0xE0..<0xF0: return 3
        default: return 4
        }
    }
}
