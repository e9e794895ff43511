import Foundation
import FuzzSupport
import Testing
@testable import Tokenizers

/// Seeded mutations of the files the tokenizers read (a CLIP vocab.json, merges.txt and the tiny model's
/// tokenizer_config.json; a T5 tokenizer.json and its config), one file mutated at a time in a scratch folder: each
/// load either throws a TokenizerError line naming the file or gives a tokenizer whose pipeline ids have the asked
/// length and no negative id; the slowest load stays far under a second.
@Suite struct TokenizerFuzzTests {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SD3Tests/Fixtures/tiny-sd3")
    static let prompt = "a red fox, <|endoftext|> 1girl ✨ ⅷ ｆｕｌｌ  Ünïcödé </s> <extra_id_3> 12345"

    /// A small CLIP vocabulary (a–z alone and word-final, three merges, the two specials): debug builds load the tiny
    /// model's 714-token files in milliseconds, too slow for 10,000 loads in a few seconds.
    static func smallCLIP() throws -> (vocab: Data, merges: Data) {
        let letters = (UInt8(ascii: "a")...UInt8(ascii: "z")).map { String(UnicodeScalar($0)) }
        let tokens = letters + letters.map { $0 + "</w>" } + ["in", "th", "re</w>", "<|startoftext|>", "<|endoftext|>"]
        let vocab = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
        return (try JSONSerialization.data(withJSONObject: vocab, options: [.sortedKeys]), Data("#version: 0.2\ni n\nt h\nr e</w>\n".utf8))
    }

    /// The tiny model's T5 tokenizer.json with its first 64 pieces and without its 320 kB precompiled charsmap.
    static func smallT5JSON() throws -> Data {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: tiny.appendingPathComponent("tokenizer_3/tokenizer.json"))) as! [String: Any]
        object["normalizer"] = NSNull()
        var model = object["model"] as! [String: Any]
        model["vocab"] = Array((model["vocab"] as! [Any]).prefix(64))
        object["model"] = model
        object["added_tokens"] = (object["added_tokens"] as! [[String: Any]]).filter { ($0["id"] as? Int ?? 0) < 64 }
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// Overwrites a file in place with one write(2): Foundation's Data.write costs milliseconds here.
    static func overwrite(_ url: URL, _ bytes: [UInt8]) {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    @Test func mutatedTokenizerFilesNeverCrash() throws {
        let clip = Fixtures.scratchFolder("clip"), t5 = Fixtures.scratchFolder("t5")
        var originals: [(folder: URL, name: String, bytes: Data)] = []
        let small = try Self.smallCLIP()
        originals.append((clip, "vocab.json", small.vocab))
        originals.append((clip, "merges.txt", small.merges))
        originals.append((clip, "tokenizer_config.json", try Data(contentsOf: Self.tiny.appendingPathComponent("tokenizer/tokenizer_config.json"))))
        originals.append((t5, "tokenizer.json", try Self.smallT5JSON()))
        originals.append((t5, "tokenizer_config.json", try Data(contentsOf: Self.tiny.appendingPathComponent("tokenizer_3/tokenizer_config.json"))))
        for file in originals { try file.bytes.write(to: file.folder.appendingPathComponent(file.name)) }
        var accepted = 0, refused = 0, slowest = 0.0
        let share = max(1, Fuzz.iterations() / originals.count)
        for (index, file) in originals.enumerated() {
            let target = file.folder.appendingPathComponent(file.name)
            let load = { (bytes: [UInt8]) in
                Self.overwrite(target, bytes)
                do {
                    if file.folder == clip {
                        let tokenizer = try CLIPTokenizer(folder: clip)
                        let ids = tokenizer.encodeForPipeline(Self.prompt, maxLength: 77).ids
                        #expect(ids.count == 77 && ids.allSatisfy { $0 >= 0 }, "\(file.name): \(ids.prefix(10))")
                    } else {
                        let tokenizer = try T5Tokenizer(folder: t5)
                        let ids = tokenizer.encodeForPipeline(Self.prompt, maxLength: 32).ids
                        #expect(ids.count == 32 && ids.allSatisfy { $0 >= 0 }, "\(file.name): \(ids.prefix(10))")
                    }
                    accepted += 1
                } catch {
                    refused += 1
                    let message = "\(error)"
                    #expect(message.contains(file.folder.path) && !message.contains("\n"), "\(file.name): \(message)")
                }
            }
            let run = Fuzz.run(corpus: [[UInt8](file.bytes)], seed: 31 + UInt64(index), iterations: share, load)
            slowest = max(slowest, Fuzz.confirmedSeconds(run, load))
            try file.bytes.write(to: target)
        }
        #expect(slowest < 0.5, "slowest tokenizer load took \(slowest) s")
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }
}
