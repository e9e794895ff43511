import Foundation
import Testing
@testable import Tokenizers

/// The fixtures written by scripts/fixtures/tokenizer_ids.py, and tokenizer folders assembled from them.
enum Fixtures {
    static let root: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static let prompts: PromptFixture = {
        let data = try! Data(contentsOf: root.appendingPathComponent("prompts.json"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode(PromptFixture.self, from: data)
    }()

    static let unicode: UnicodeFixture = {
        let data = try! Data(contentsOf: root.appendingPathComponent("unicode.json"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode(UnicodeFixture.self, from: data)
    }()

    /// This process's scratch area, removed when the test process exits.
    private static let scratchRoot: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("TokenizersTests-\(ProcessInfo.processInfo.processIdentifier)")
        atexit {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("TokenizersTests-\(getpid())")
            try? FileManager.default.removeItem(at: url)
        }
        return url
    }()

    /// A scratch folder, unique per call.
    static func scratchFolder(_ name: String) -> URL {
        let url = scratchRoot.appendingPathComponent(UUID().uuidString).appendingPathComponent(name)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A copy of fixture folder `source`, with files replaced or removed; unchanged files are symbolic links.
    static func folder(copying source: String, replacing files: [String: Data] = [:], removing: [String] = []) -> URL {
        let folder = scratchFolder(source)
        let from = root.appendingPathComponent(source)
        for name in try! FileManager.default.contentsOfDirectory(atPath: from.path)
        where !removing.contains(name) && files[name] == nil {
            try! FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name),
                                                        withDestinationURL: from.appendingPathComponent(name))
        }
        for (name, data) in files { try! data.write(to: folder.appendingPathComponent(name)) }
        return folder
    }

    static func data(_ relativePath: String) -> Data {
        try! Data(contentsOf: root.appendingPathComponent(relativePath))
    }

    /// The CLIP folder for a configuration: clip/ itself, or a copy with a config from clip-configs/.
    static func clipFolder(_ configuration: String) -> URL {
        if configuration == "clip" { return root.appendingPathComponent("clip") }
        return folder(copying: "clip", replacing: ["tokenizer_config.json": data("clip-configs/\(configuration).json")])
    }

    static func t5Folder(_ configuration: String) -> URL {
        switch configuration {
        case "t5-no-extra-256": return root.appendingPathComponent("t5-no-extra")
        case "t5-spiece-256": return folder(copying: "t5", removing: ["tokenizer.json"])
        case "t5-legacy-256": return folder(copying: "t5", replacing: ["tokenizer_config.json": data("t5-configs/t5-legacy.json")])
        default: return root.appendingPathComponent("t5")
        }
    }

    static let clip = try! CLIPTokenizer(folder: clipFolder("clip"))
    static let t5 = try! T5Tokenizer(folder: t5Folder("t5-256"))
}

struct PromptFixture: Decodable {
    struct Case: Decodable {
        let maxLength: Int
        let padId: Int
        let removedTextFrom: Int
        /// Padded ids without their trailing run of pad ids.
        let ids: [[Int]]
        let untruncated: [[Int]]?
        let untruncatedSameAs: String?
        /// Prompt index (as a string) → decoded warning text.
        let removedText: [String: String]

        func paddedIds(_ index: Int) -> [Int] {
            ids[index] + Array(repeating: padId, count: maxLength - ids[index].count)
        }
    }

    let script: String
    let versions: [String: String]
    let prompts: [String]
    let t5Normalized: [String]
    let cases: [String: Case]

    func untruncated(_ name: String) -> [[Int]] {
        let entry = cases[name]!
        return entry.untruncated ?? untruncated(entry.untruncatedSameAs!)
    }
}

struct UnicodeFixture: Decodable {
    let classes: [String: [[UInt32]]]
    /// Code point → tokenizers' Lowercase of it, where it changes.
    let lowercase: [String: String]
    /// Code point → [NFD, NFC] of it by tokenizers (unicode-normalization), where either changes it.
    let nfdNfc: [String: [String]]
    /// Code point → the T5 Precompiled normalizer's output, where it changes it.
    let precompiledSingleCodepoints: [String: String]

    func members(_ name: String) -> Set<UInt32> {
        var set = Set<UInt32>()
        for range in classes[name]! { for value in range[0]...range[1] { set.insert(value) } }
        return set
    }
}

/// Compares ids prompt by prompt and reports each mismatch with the prompt, the first differing position and
/// both lists; returns the number of mismatches.
@discardableResult
func compareIds(_ label: String, prompts: [String], expected: (Int) -> [Int], actual: (Int) -> [Int],
                sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    var mismatches = 0
    for index in prompts.indices {
        let want = expected(index)
        let got = actual(index)
        guard want != got else { continue }
        mismatches += 1
        if mismatches <= 8 {
            let position = zip(want, got).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(want.count, got.count)
            Issue.record("""
                \(label) prompt \(index) \(prompts[index].debugDescription.prefix(300))
                first difference at \(position)
                expected \(want)
                got      \(got)
                """, sourceLocation: sourceLocation)
        }
    }
    if mismatches > 8 { Issue.record("\(label): \(mismatches) prompts differ in all", sourceLocation: sourceLocation) }
    return mismatches
}

/// Code points as compact hexadecimal ranges, for failure messages.
func describeRanges(_ values: [UInt32]) -> String {
    var parts: [String] = []
    var index = 0
    while index < values.count {
        var end = index
        while end + 1 < values.count && values[end + 1] == values[end] + 1 { end += 1 }
        let start = String(values[index], radix: 16, uppercase: true)
        parts.append(end == index ? "U+\(start)" : "U+\(start)–U+\(String(values[end], radix: 16, uppercase: true))")
        index = end + 1
    }
    return parts.joined(separator: ", ")
}

/// Every fixture prompt of `configuration`: padded ids, untruncated ids and the truncation-warning text against
/// transformers 5.24, for either tokenizer; at least `minimumWarnings` prompts must be truncated.
func checkPipelineIds(_ configuration: String, padId: Int, encode: (String) -> [Int],
                      encodeForPipeline: (String, Int, Int) -> PipelineEncoding, minimumWarnings: Int) throws {
    let fixture = Fixtures.prompts
    let expected = try #require(fixture.cases[configuration])
    #expect(padId == expected.padId)
    #expect(fixture.prompts.count >= 500)
    let encodings = fixture.prompts.map { encodeForPipeline($0, expected.maxLength, expected.removedTextFrom) }
    let untruncated = fixture.untruncated(configuration)
    compareIds("\(configuration) padded", prompts: fixture.prompts, expected: expected.paddedIds, actual: { encodings[$0].ids })
    compareIds("\(configuration) untruncated", prompts: fixture.prompts, expected: { untruncated[$0] },
               actual: { encode(fixture.prompts[$0]) })
    for (index, encoding) in encodings.enumerated() {
        let want = expected.removedText[String(index)]
        #expect(encoding.removedText == want, "\(configuration) prompt \(index) \(fixture.prompts[index].debugDescription.prefix(120))")
    }
    #expect(expected.removedText.count >= minimumWarnings)
}
