import Foundation
import Testing
@testable import Tokenizers

/// Long prompts must stay linear: a 10,000-character prompt of any shape tokenizes in well under a second
/// even in a debug build (a quadratic step would take minutes here).
@Suite struct PerformanceTests {
    static let shapes: [(String, String)] = [
        ("one long word", String(repeating: "a", count: 10_000)),
        ("alternating letters", String(repeating: "ab", count: 5_000)),
        ("exclamation marks", String(repeating: "!", count: 10_000)),
        ("digits", String(repeating: "1234567890", count: 1_000)),
        ("words", Array(repeating: "astronaut riding a horse,", count: 400).joined(separator: " ")),
        ("CJK", String(repeating: "東京の夜景", count: 2_000)),
        ("combining marks", String(repeating: "e\u{301}", count: 5_000)),
        ("spaces", String(repeating: " \t\n", count: 3_400)),
        ("special tokens", String(repeating: "<|endoftext|><extra_id_0>", count: 400)),
    ]

    @Test(arguments: shapes.map(\.0))
    func longPromptsStayLinear(_ shape: String) {
        let text = Self.shapes.first { $0.0 == shape }!.1
        let clipG = try! CLIPTokenizer(folder: Fixtures.clipFolder("clip-g"))
        for (name, tokenize) in [("CLIP", { _ = clipG.encodeForPipeline(text) }),
                                 ("T5", { _ = Fixtures.t5.encodeForPipeline(text, maxLength: 512) })] as [(String, () -> Void)] {
            let clock = ContinuousClock()
            let elapsed = clock.measure(tokenize)
            // A guard against quadratic blow-ups (minutes on these texts), not a speed target: the suites share 2 cores.
            #expect(elapsed < .seconds(15), "\(name) took \(elapsed) on \(text.unicodeScalars.count) scalars of \(shape)")
        }
    }
}
