import Foundation
import Testing
@testable import Tensors

/// Attention at the token counts SD3 reaches at 1024²: joint attention (4096 + 333 = 4429) and the
/// VAE mid-block (128² = 16384). Checked on sampled rows, and memory must stay far below the
/// 16384² · 4 B = 1 GiB one score matrix per head would take.
@Suite(.serialized) struct AttentionScaleTests {
    @Test(arguments: [4429, 16384])
    func largeTokenCounts(tokens: Int) {
        var random = SeededRandom(UInt64(tokens))
        let (heads, width) = (2, 32)
        let q = random.tensor([1, tokens, width], scale: 2), k = random.tensor([1, tokens, width], scale: 2), v = random.tensor([1, tokens, width])
        let before = peakResidentBytes()
        let out = Backends.oneDNN.attention(query: q, key: k, value: v, heads: heads)
        let growth = peakResidentBytes() - before
        #expect(growth < 256 << 20, "attention over \(tokens) tokens raised peak memory by \(growth >> 20) MiB")
        let rows = [0, 1, tokens / 2, tokens - 1]
        let expected = Naive.attention(q, k, v, heads: heads, scale: nil, causal: false, bias: nil, rows: rows)
        for r in rows {
            let got = Array(out.data[r * width..<(r + 1) * width])
            let e = nmse(got, expected[r]!)
            #expect(e <= 1e-7, "row \(r) of \(tokens): NMSE \(e); got \(got.prefix(3)), expected \(expected[r]!.prefix(3))")
        }
    }

    func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }
}
