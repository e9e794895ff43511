import Synchronization

/// Byte-level BPE with an end-of-word suffix, as tokenizers' `models/bpe` runs it for CLIP
/// (`BPE { end_of_word_suffix: "</w>", continuing_subword_prefix: "", fuse_unk: false, dropout: None }`).
///
/// A word arrives as raw UTF-8 bytes; its symbols are the byte-level characters of those bytes, the last one
/// spelled with `</w>` (`BPE::merge_word`). Merges then apply in rank order, leftmost first among equal ranks,
/// through the same priority queue as `Word::merge_all` (stale queue entries are skipped the same way).
/// Results are cached per word, as tokenizers does, up to 10,000 words shorter than 256 bytes.
final class BytePairEncoding: Sendable {
    static let cacheCapacity = 10_000
    static let cacheMaximumWordLength = 256

    /// Token spelling (byte-level characters) → id, as in vocab.json.
    let vocab: [String: Int]
    /// id → token spelling, for decoding.
    let tokens: [String?]
    /// (left id, right id) → (rank, merged id), keys and values packed as `a << 32 | b`.
    private let merges: [UInt64: UInt64]
    /// The symbol of a byte inside a word and at the end of a word (with `</w>`); -1 where the vocab lacks it.
    private let byteIds: [Int32]
    private let finalByteIds: [Int32]
    private let unknownId: Int?
    private let cache = Mutex<[[UInt8]: [Int]]>([:])

    /// `merges` are the merges.txt pairs in rank order; `describe` says where a bad pair came from.
    init(vocab: [String: Int], merges: [(String, String)], unknownToken: String?,
         describe: (Int) -> String) throws(TokenizerError) {
        self.vocab = vocab
        var tokens = [String?](repeating: nil, count: (vocab.values.max() ?? -1) + 1)
        for (token, id) in vocab where id >= 0 { tokens[id] = token }
        self.tokens = tokens
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let leftId = vocab[left], let rightId = vocab[right] else {
                throw .invalidFile(path: describe(rank), reason: "merge '\(left) \(right)' uses a token missing from vocab.json")
            }
            guard let mergedId = vocab[left + right] else {
                throw .invalidFile(path: describe(rank), reason: "merge '\(left) \(right)' makes a token missing from vocab.json")
            }
            table[UInt64(leftId) << 32 | UInt64(rightId)] = UInt64(rank) << 32 | UInt64(mergedId)
        }
        self.merges = table
        byteIds = ByteLevel.byteToScalar.map { scalar in Int32(vocab[String(scalar)] ?? -1) }
        finalByteIds = ByteLevel.byteToScalar.map { scalar in Int32(vocab[String(scalar) + "</w>"] ?? -1) }
        unknownId = unknownToken.flatMap { vocab[$0] }
    }

    /// The ids of one pre-tokenized word (its UTF-8 bytes).
    func encode(word: [UInt8]) -> [Int] {
        if word.isEmpty { return [] }
        let cacheable = word.count < Self.cacheMaximumWordLength
        if cacheable, let hit = cache.withLock({ $0[word] }) { return hit }
        let ids = merge(word: word)
        if cacheable {
            cache.withLock { cache in
                if cache.count < Self.cacheCapacity { cache[word] = ids }
            }
        }
        return ids
    }

    /// Words currently cached (for tests).
    var cachedWordCount: Int { cache.withLock { $0.count } }

    /// `BPE::merge_word` + `Word::merge_all`, without the cache.
    func merge(word: [UInt8]) -> [Int] {
        var symbols = initialSymbols(word)
        if symbols.count < 2 { return symbols.map { Int($0.id) } }
        var queue = MergeQueue()
        for index in 0..<(symbols.count - 1) {
            if let merge = merge(symbols[index].id, symbols[index + 1].id) {
                queue.push(MergeCandidate(rank: merge.rank, position: Int32(index), mergedId: merge.id))
            }
        }
        while let top = queue.pop() {
            let position = Int(top.position)
            guard symbols[position].length > 0, symbols[position].next >= 0 else { continue }
            let nextPosition = Int(symbols[position].next)
            let right = symbols[nextPosition]
            guard let current = merge(symbols[position].id, right.id), current.id == top.mergedId else { continue }
            symbols[position].id = top.mergedId
            symbols[position].length += right.length
            symbols[position].next = right.next
            symbols[nextPosition].length = 0
            if right.next >= 0 { symbols[Int(right.next)].previous = Int32(position) }
            let previous = symbols[position].previous
            if previous >= 0, let merge = merge(symbols[Int(previous)].id, top.mergedId) {
                queue.push(MergeCandidate(rank: merge.rank, position: previous, mergedId: merge.id))
            }
            let next = symbols[position].next
            if next >= 0, let merge = merge(top.mergedId, symbols[Int(next)].id) {
                queue.push(MergeCandidate(rank: merge.rank, position: Int32(position), mergedId: merge.id))
            }
        }
        return symbols.filter { $0.length > 0 }.map { Int($0.id) }
    }

    private struct Symbol {
        var id: Int32
        var previous: Int32
        var next: Int32
        var length: Int32
    }

    /// One symbol per byte; a byte whose character is missing from the vocab becomes the unknown token
    /// (fuse_unk false: one unknown per byte) or is dropped when there is no unknown token.
    private func initialSymbols(_ word: [UInt8]) -> [Symbol] {
        var ids: [Int32] = []
        ids.reserveCapacity(word.count)
        for (index, byte) in word.enumerated() {
            let id = index == word.count - 1 ? finalByteIds[Int(byte)] : byteIds[Int(byte)]
            if id >= 0 {
                ids.append(id)
            } else if let unknownId {
                ids.append(Int32(unknownId))
            }
        }
        return ids.enumerated().map { index, id in
            Symbol(id: id, previous: Int32(index - 1), next: index + 1 < ids.count ? Int32(index + 1) : -1, length: 1)
        }
    }

    private func merge(_ left: Int32, _ right: Int32) -> (rank: Int32, id: Int32)? {
        guard let value = merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))] else {
            return nil
        }
        return (Int32(truncatingIfNeeded: value >> 32), Int32(truncatingIfNeeded: value & 0xFFFF_FFFF))
    }
}

/// A pending merge, ordered by rank then position (tokenizers' `Merge` ordering in `word.rs`).
private struct MergeCandidate {
    var rank: Int32
    var position: Int32
    var mergedId: Int32

    func precedes(_ other: MergeCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : position < other.position
    }
}

/// A binary min-heap of merge candidates.
private struct MergeQueue {
    private var items: [MergeCandidate] = []

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < items.count, items[left].precedes(items[smallest]) { smallest = left }
                if right < items.count, items[right].precedes(items[smallest]) { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
