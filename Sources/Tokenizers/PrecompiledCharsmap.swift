/// SentencePiece's compiled normalization rules (`precompiled_charsmap`, here nmt_nfkc: NFKC plus SentencePiece's
/// control-character and whitespace rules), applied as huggingface's `spm_precompiled` crate 0.1.4 applies them
/// (`src/lib.rs`, used by tokenizers' `normalizers/precompiled.rs`).
///
/// Format: a little-endian u32 giving the byte size of a Darts double-array trie, the trie as u32 units, then
/// a blob of NUL-terminated replacement strings. The trie maps a UTF-8 key to an offset into that blob.
///
/// Normalization walks the text by extended grapheme cluster (Swift's `Character`, the same Unicode 16 rules as
/// the crate's `unicode-segmentation`): a cluster shorter than 6 UTF-8 bytes is looked up whole; otherwise — or
/// when that lookup fails — each scalar is looked up alone and kept as is when absent. A lookup returns the
/// *first* (shortest) key of the trie that is a prefix of the bytes, exactly as the crate does, so a cluster
/// whose leading character has a rule is replaced by that character's replacement alone.
struct PrecompiledCharsmap: Sendable {
    private let units: [UInt32]
    private let replacements: [UInt8]

    /// Parses the charsmap; the reason string names what is wrong.
    init(_ bytes: [UInt8]) throws(PrecompiledCharsmapError) {
        guard bytes.count >= 4 else { throw .tooShort }
        let trieSize = Int(Self.littleEndianUInt32(bytes, at: 0))
        let unitCount = trieSize / 4
        guard 4 + unitCount * 4 <= bytes.count, unitCount > 0 else { throw .trieOutOfBounds }
        units = (0..<unitCount).map { Self.littleEndianUInt32(bytes, at: 4 + $0 * 4) }
        replacements = Array(bytes[(4 + unitCount * 4)...])
        guard String(validating: replacements, as: UTF8.self) != nil else { throw .replacementsNotUTF8 }
    }

    func normalize(_ text: String) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        for cluster in text {
            let bytes = Array(cluster.utf8)
            if bytes.count < 6, let replacement = replacement(for: bytes[...]) {
                output += replacement
                continue
            }
            var start = 0
            for scalar in cluster.unicodeScalars {
                let end = start + UTF8.width(scalar)
                if let replacement = replacement(for: bytes[start..<end]) {
                    output += replacement
                } else {
                    output += bytes[start..<end]
                }
                start = end
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// `Precompiled::transform`: the replacement of the shortest trie key that prefixes `key`.
    func replacement(for key: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let offset = firstPrefixValue(key), offset >= 0, offset <= replacements.count else { return nil }
        var end = offset
        while end < replacements.count && replacements[end] != 0 { end += 1 }
        return replacements[offset..<end]
    }

    /// `DoubleArray::common_prefix_search`, stopped at its first result (the only one `transform` uses).
    private func firstPrefixValue(_ key: ArraySlice<UInt8>) -> Int? {
        var node = 0
        node ^= Self.offset(units[0])
        for byte in key {
            if byte == 0 { break }
            node ^= Int(byte)
            guard node < units.count else { return nil }
            let unit = units[node]
            if Self.label(unit) != UInt32(byte) { return nil }
            node ^= Self.offset(unit)
            guard node < units.count else { return nil }
            if Self.hasLeaf(unit) { return Int(Self.value(units[node])) }
        }
        return nil
    }

    // Darts unit layout (`ArrayUnitTrait` in spm_precompiled).
    private static func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    private static func value(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) - 1) }
    private static func label(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) | 0xFF) }
    private static func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }

    private static func littleEndianUInt32(_ bytes: [UInt8], at index: Int) -> UInt32 {
        UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24
    }
}

enum PrecompiledCharsmapError: Error, CustomStringConvertible {
    case tooShort, trieOutOfBounds, replacementsNotUTF8

    var description: String {
        switch self {
        case .tooShort: return "precompiled_charsmap is shorter than its 4-byte header"
        case .trieOutOfBounds: return "precompiled_charsmap's trie size runs past its end"
        case .replacementsNotUTF8: return "precompiled_charsmap's replacement strings are not UTF-8"
        }
    }
}
