import Foundation
import RegularFiles

/// What a model understands, from an optional `prompt_guide.json` in its folder (the demo model ships one, written
/// by scripts/demo-model/export.py from its caption grammar): example prompts, shown dim in an empty prompt field,
/// and the word groups it was trained on, named in a hint when a prompt uses none of them. Models without the
/// file show neither.
public struct PromptGuide: Codable, Sendable, Equatable {
    public struct Group: Codable, Sendable, Equatable {
        public var name: String
        /// Lower case; a word may be a phrase ("top left").
        public var words: [String]
        public init(name: String, words: [String]) { (self.name, self.words) = (name, words) }
    }

    public var examples: [String]
    public var groups: [Group]

    public init(examples: [String], groups: [Group]) { (self.examples, self.groups) = (examples, groups) }

    public static let fileName = "prompt_guide.json"

    /// The folder's guide; nil when it has none, or when the file cannot be read or is not a guide (a guide only
    /// adds hints, so a broken one costs nothing but them).
    public static func read(model path: String) -> PromptGuide? {
        let file = path + "/" + fileName
        guard FileManager.default.fileExists(atPath: file),
              let bytes = try? RegularFile.contents(file, limit: 1 << 20, what: "prompt guide"),
              let guide = try? JSONDecoder().decode(PromptGuide.self, from: Data(bytes)),
              !guide.examples.isEmpty || !guide.groups.isEmpty else { return nil }
        return guide
    }

    /// Whether `prompt` uses any of the guide's words: whole words, case-insensitive; a phrase matches as
    /// consecutive words ("top left" in "at the top left").
    public func knowsAnyWord(of prompt: String) -> Bool {
        let words = Self.words(prompt)
        return groups.contains { group in
            group.words.contains { entry in
                let phrase = Self.words(entry)
                guard !phrase.isEmpty, phrase.count <= words.count else { return false }
                return (0...(words.count - phrase.count)).contains { Array(words[$0..<$0 + phrase.count]) == phrase }
            }
        }
    }

    static func words(_ text: String) -> [String] {
        text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
    }

    /// The one-line hint for a prompt the model knows nothing of, at most `width` columns: as many words of each
    /// group as fit, the same number from each, a cut group ending in "…" ("model knows: red … circle … top left …"
    /// when narrow; groups apart by " · " where that fits).
    public func hint(width: Int) -> String {
        let lead = "model knows: "
        let most = groups.map(\.words.count).max() ?? 0
        for count in stride(from: most, through: 1, by: -1) {
            let parts = groups.map { group in group.words.prefix(count).joined(separator: " ") + (group.words.count > count ? " …" : "") }
            for separator in [" · ", " "] {
                let text = lead + parts.joined(separator: separator)
                if CellWidth.of(text) <= width { return text }
            }
        }
        let shortest = lead + groups.map { ($0.words.first ?? "") + " …" }.joined(separator: " ")
        return CellWidth.truncate(shortest, to: max(0, width - 1)) + "…"
    }
}
