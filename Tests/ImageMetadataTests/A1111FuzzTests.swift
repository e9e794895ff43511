import FuzzSupport
import Foundation
import ImageIO
@testable import ImageMetadata
import Testing

/// A1111/Forge/stable-diffusion.cpp infotext from a hostile PNG: 10,000 seeded mutations of the sample files'
/// `parameters` chunks never crash, each parses fast, and the linear scanner finds exactly the pairs A1111's own
/// regex (`re_param`, run here through NSRegularExpression as the reference) finds.
@Suite struct A1111FuzzTests {
    /// modules/infotext_utils.py `re_param`, as A1111 writes it.
    static let reference = try! NSRegularExpression(pattern: #"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#)

    static func referencePairs(_ line: String) -> [RecalledParameters.Pair] {
        let ns = line as NSString
        return reference.matches(in: line, range: NSRange(location: 0, length: ns.length)).map { match in
            let key = ns.substring(with: match.range(at: 1)).trimmingCharacters(in: .whitespaces)
            var value = ns.substring(with: match.range(at: 2)).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), let decoded = try? JSONDecoder().decode(String.self, from: Data(value.utf8)) { value = decoded }
            return RecalledParameters.Pair(key, value)
        }
    }

    static func corpus() throws -> [[UInt8]] {
        var texts = try ["a1111.png", "forge.png", "sdcpp.png"].map { name in
            try #require(PNGFile.readText(RecallTests.folder + "/" + name).first { $0.key == "parameters" }?.value)
        }
        texts.append(#"a "quoted" prompt, (masterpiece:1.2)\#nNegative prompt: ugly\#nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 512x768, Lora hashes: "a: 1f2e, b: 3c4d", Template: "x \"y\" z", Version: v1.10.1"#)
        return texts.map { Array($0.utf8) }
    }

    @Test func scannerMatchesTheRegexOnMutations() throws {
        let corpus = try Self.corpus()
        for bytes in corpus {
            let line = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n").last ?? ""
            #expect(A1111Infotext.pairs(line).count >= 3, "the corpus lines are parameter lines")
        }
        var mismatches: [String] = []
        // The parse alone is timed (the reference regex is the slow part of each case).
        var slowest = (seconds: 0.0, text: "")
        _ = Fuzz.run(corpus: corpus, seed: 0xA111_1001) { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            let (pairs, seconds) = Fuzz.cpuSeconds {
                _ = try? A1111Reader.parse(text, latin1: false, name: "fuzz.png")
                return A1111Infotext.pairs(text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n").last ?? "")
            }
            let line = text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n").last ?? ""
            if seconds > slowest.seconds { slowest = (seconds, text) }
            if pairs != Self.referencePairs(line), mismatches.count < 3 { mismatches.append(line) }
        }
        #expect(mismatches.isEmpty, "first lines where the scanner and re_param differ: \(mismatches.map { $0.debugDescription })")
        // A guard against backtracking blow-ups (seconds to minutes per case), not a speed target: a loaded CI
        // machine once took 0.8 s for a case that takes milliseconds.
        #expect(slowest.seconds < 5, "slowest case \(slowest.seconds) s: \(slowest.text.prefix(80).debugDescription)")
    }

    /// Hand-made edge cases of re_param: keys inside word runs, quotes that do not close, escapes, empty values.
    @Test(arguments: ["a b c: 1, d: \"x, y\", e: \"unclosed, f: 2", "Steps: \"\", g: \"a\\\"b\", h:", " : x, 1: y, -k: z, k-: w",
                      "x: \"a\" b, y: 2, z: 3", "a/b: 1,c d:2,,e:3", "key: \"tail\\\"", "é1: 2, ü: 3, _x: 4, x_: 5",
                      "w:\t\"q\"\r", "k: \"v\",", String(repeating: "word ", count: 50) + ": 1, b: 2, c: 3"])
    func edgeCasesMatchTheRegex(_ line: String) {
        #expect(A1111Infotext.pairs(line) == Self.referencePairs(line))
    }

    /// 40,000 words before the parameters: re_param took over a minute; the scanner, well under a second. The bound
    /// is far from both and counts the parsing thread's CPU time (`Fuzz.cpuSeconds`): it catches the blow-up, not a loaded machine.
    @Test func longTextParsesInLinearTime() throws {
        let words = (0..<40_000).map { "word\($0 % 97)" }.joined(separator: " ")
        let text = words + "\nNegative prompt: " + words + "\nSteps: 20, " + words + ", CFG scale: 7, Seed: 3, Size: 64x64"
        let (parsed, seconds) = try Fuzz.cpuSeconds { try A1111Reader.parse(text, latin1: false, name: "long.png") }
        #expect(seconds < 15, "\(seconds) s of CPU")
        #expect(parsed.steps == 20 && parsed.seed == 3 && parsed.guidanceScale == 7 && parsed.width == 64 && parsed.prompt == words)
        // A last line that is one long run of words with no colon at all.
        let seconds2 = Fuzz.cpuSeconds { #expect(throws: MetadataError.self) { try A1111Reader.parse("prompt\n" + words, latin1: false, name: "long.png") } }.1
        #expect(seconds2 < 15, "\(seconds2) s of CPU")
    }
}
