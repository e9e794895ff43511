import Foundation

/// A token as a config file describes it (transformers' / tokenizers' `AddedToken` without an id).
/// A plain string in a config is a special token matched on the raw text (`AddedToken(s, special=True)`,
/// whose `normalized` defaults to `not special`).
struct AddedTokenSpec: Sendable, Equatable {
    var content: String
    var special = true
    var normalized = false
    var lstrip = false
    var rstrip = false
    var singleWord = false

    init(content: String, special: Bool = true, normalized: Bool? = nil) {
        self.content = content
        self.special = special
        self.normalized = normalized ?? !special
    }

    /// A string, or an object with `content` and optional flags (`{"__type": "AddedToken", ...}` or a
    /// tokenizer.json `added_tokens` entry).
    init?(json: Any) {
        if let text = json as? String {
            self.init(content: text)
            return
        }
        guard let object = json as? [String: Any], let content = object["content"] as? String else { return nil }
        let special = object["special"] as? Bool ?? true
        self.init(content: content, special: special, normalized: object["normalized"] as? Bool)
        lstrip = object["lstrip"] as? Bool ?? false
        rstrip = object["rstrip"] as? Bool ?? false
        singleWord = object["single_word"] as? Bool ?? false
    }
}

/// A piece of text between added tokens, or an added token's id.
enum AddedTokenSegment: Equatable {
    case text(String)
    case token(Int)
}

/// The tokens tokenizers matches in the text before the normalizer and the model run
/// (`tokenizer/added_vocabulary.rs`, `AddedVocabulary::extract_and_normalize`):
/// 1. tokens with `normalized == false` are found in the raw text;
/// 2. every piece between them is normalized, and tokens with `normalized == true` are found in the result
///    (their pattern is their own normalized content).
/// Both searches are leftmost-longest, as tokenizers' Aho–Corasick automata (`MatchKind::LeftmostLongest`).
struct AddedVocabulary: Sendable {
    struct Entry: Sendable {
        let spec: AddedTokenSpec
        let id: Int
    }

    let entries: [Entry]
    private let idToEntry: [Int: Int]
    private let rawTrie: ByteTrie
    private let normalizedTrie: ByteTrie

    /// Assigns ids as tokenizers' `AddedVocabulary::add_tokens`: a content already in the model vocabulary keeps
    /// that id (why the pad token "!" of SD3's `tokenizer_2` is id 0), an earlier added token keeps its id, and a
    /// new content gets the next id after the model vocabulary. The first spec for a content wins, as transformers
    /// only adds tokens whose content it has not seen.
    init(specs: [AddedTokenSpec], modelId: (String) -> Int?, modelSize: Int, normalize: (String) -> String) {
        var entries: [Entry] = []
        var byContent: [String: Int] = [:]
        var nextId = modelSize
        for spec in specs where !spec.content.isEmpty {
            guard byContent[spec.content] == nil else { continue }
            let id: Int
            if let known = modelId(spec.content) {
                id = known
            } else {
                id = nextId
                nextId += 1
            }
            byContent[spec.content] = entries.count
            entries.append(Entry(spec: spec, id: id))
            nextId = max(nextId, id + 1)
        }
        var raw = ByteTrie()
        var normalized = ByteTrie()
        var idToEntry: [Int: Int] = [:]
        for (index, entry) in entries.enumerated() {
            idToEntry[entry.id] = index
            if entry.spec.normalized {
                normalized.insert(Array(normalize(entry.spec.content).utf8), value: index)
            } else {
                raw.insert(Array(entry.spec.content.utf8), value: index)
            }
        }
        self.entries = entries
        self.idToEntry = idToEntry
        rawTrie = raw
        normalizedTrie = normalized
    }

    func id(of content: String) -> Int? { entries.first { $0.spec.content == content }?.id }

    /// The content of an added token, for decoding.
    /// One past the largest added-token id (0 without added tokens).
    var idLimit: Int { (idToEntry.keys.max() ?? -1) + 1 }

    func content(of id: Int) -> String? { idToEntry[id].map { entries[$0].spec.content } }

    /// The text split around added tokens, each text piece normalized by `normalize` (which runs on pieces, so
    /// no normalization crosses an added token). Empty text pieces are dropped, as in tokenizers.
    func split(_ text: String, normalize: (String) -> String) -> [AddedTokenSegment] {
        var result: [AddedTokenSegment] = []
        for segment in Self.split(text, trie: rawTrie, entries: entries) {
            guard case .text(let piece) = segment else {
                result.append(segment)
                continue
            }
            let normalizedPiece = normalize(piece)
            for inner in Self.split(normalizedPiece, trie: normalizedTrie, entries: entries) {
                if case .text(let rest) = inner, rest.isEmpty { continue }
                result.append(inner)
            }
        }
        return result
    }

    /// tokenizers' `AddedVocabulary::find_matches` plus the split around the matches.
    private static func split(_ text: String, trie: ByteTrie, entries: [Entry]) -> [AddedTokenSegment] {
        if text.isEmpty { return [] }
        if trie.maximumKeyLength == 0 { return [.text(text)] }
        let bytes = Array(text.utf8)
        var segments: [AddedTokenSegment] = []
        bytes.withUnsafeBufferPointer { buffer in
            var startOffset = 0
            var position = 0
            while position < buffer.count {
                guard let match = trie.longestPrefix(of: buffer, from: position) else {
                    position += 1
                    continue
                }
                var start = position
                var stop = position + match.length
                position = stop  // the automaton resumes after the match, even one discarded below
                let spec = entries[match.value].spec
                if spec.singleWord {
                    let startSpace = start == 0 || !UTF8Scan.endsWithWordCharacter(buffer, before: start)
                    let stopSpace = stop == buffer.count || !UTF8Scan.startsWithWordCharacter(buffer, at: stop)
                    if !startSpace || !stopSpace { continue }
                }
                if spec.lstrip { start = max(UTF8Scan.whitespaceRunStart(buffer, before: start), startOffset) }
                if spec.rstrip { stop = UTF8Scan.whitespaceRunEnd(buffer, from: stop) }
                if startOffset < start { segments.append(.text(String(decoding: buffer[startOffset..<start], as: UTF8.self))) }
                segments.append(.token(entries[match.value].id))
                startOffset = stop
            }
            if startOffset < buffer.count {
                segments.append(.text(String(decoding: buffer[startOffset...], as: UTF8.self)))
            }
        }
        return segments
    }
}

/// Scalar tests at byte positions of UTF-8 text, for the added-token word and whitespace rules.
enum UTF8Scan {
    /// The scalar that ends just before byte `position`.
    static func scalar(_ bytes: UnsafeBufferPointer<UInt8>, before position: Int) -> (Unicode.Scalar, Int)? {
        guard position > 0 else { return nil }
        var start = position - 1
        while start > 0 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        return scalar(bytes, at: start).map { ($0.0, start) }
    }

    /// The scalar that starts at byte `position`, and its length in bytes.
    static func scalar(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int) -> (Unicode.Scalar, Int)? {
        guard position < bytes.count else { return nil }
        var iterator = bytes[position...].makeIterator()
        var decoder = UTF8()
        guard case .scalarValue(let scalar) = decoder.decode(&iterator) else { return nil }
        return (scalar, UTF8.width(scalar))
    }

    static func endsWithWordCharacter(_ bytes: UnsafeBufferPointer<UInt8>, before position: Int) -> Bool {
        scalar(bytes, before: position).map { UnicodeClasses.isWordCharacter($0.0) } ?? false
    }

    static func startsWithWordCharacter(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int) -> Bool {
        scalar(bytes, at: position).map { UnicodeClasses.isWordCharacter($0.0) } ?? false
    }

    /// Where the run of whitespace that ends at `position` starts (`\s*$` on the text before it).
    static func whitespaceRunStart(_ bytes: UnsafeBufferPointer<UInt8>, before position: Int) -> Int {
        var start = position
        while let (scalar, scalarStart) = scalar(bytes, before: start), UnicodeClasses.isWhitespace(scalar) {
            start = scalarStart
        }
        return start
    }

    /// Where the run of whitespace that starts at `position` ends (`^\s*` on the text after it).
    static func whitespaceRunEnd(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int) -> Int {
        var end = position
        while let (scalar, length) = scalar(bytes, at: end), UnicodeClasses.isWhitespace(scalar) { end += length }
        return end
    }
}
