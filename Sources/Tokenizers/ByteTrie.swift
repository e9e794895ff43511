/// A trie over UTF-8 bytes, the structure tokenizers uses both for the Unigram vocabulary
/// (`models/unigram/trie.rs`, `common_prefix_search`) and for added tokens (an Aho–Corasick automaton searched
/// leftmost-longest in `tokenizer/added_vocabulary.rs`).
///
/// Edges live in one dictionary keyed by `node << 8 | byte`, so building a 32,000-piece vocabulary makes one
/// allocation rather than one per node.
struct ByteTrie: Sendable {
    private var edges: [UInt64: Int32] = [:]
    /// The value stored at each node (the piece's id), or -1 where no key ends.
    private var values: [Int32] = [-1]
    private(set) var maximumKeyLength = 0

    init() {}

    /// Stores `value` for `key`; a later insert of the same key replaces the value.
    mutating func insert<Key: Collection<UInt8>>(_ key: Key, value: Int) {
        var node = 0
        for byte in key {
            let edge = UInt64(node) << 8 | UInt64(byte)
            if let next = edges[edge] {
                node = Int(next)
            } else {
                values.append(-1)
                let next = values.count - 1
                edges[edge] = Int32(next)
                node = next
            }
        }
        values[node] = Int32(value)
        maximumKeyLength = max(maximumKeyLength, key.count)
    }

    /// Calls `body(length, value)` for every stored key that is a prefix of `bytes[start...]`, shortest first —
    /// the order of tokenizers' `common_prefix_search`.
    func forEachPrefix(of bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ body: (Int, Int) -> Void) {
        var node = 0
        var position = start
        while position < bytes.count {
            guard let next = edges[UInt64(node) << 8 | UInt64(bytes[position])] else { return }
            node = Int(next)
            position += 1
            if values[node] >= 0 { body(position - start, Int(values[node])) }
        }
    }

    /// The longest stored key that starts at `start`, as (length, value).
    func longestPrefix(of bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> (length: Int, value: Int)? {
        var best: (length: Int, value: Int)?
        forEachPrefix(of: bytes, from: start) { length, value in best = (length, value) }
        return best
    }
}
