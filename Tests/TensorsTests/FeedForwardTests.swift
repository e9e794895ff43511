import Foundation
import Testing
@testable import Tensors

/// The MLP with GELU fused into the first product and the hidden layer written in the second product's operand form,
/// against the same MLP in Double (on bf16-rounded operands for bf16 weights), on both backends.
@Suite struct FeedForwardTests {
    static func rounded(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, data: t.data.map { HalfPrecision.float(bf16: HalfPrecision.bf16($0)) }) }

    @Test(arguments: [BackendKind.oneDNN, .openBLAS], [Precision.fp32, .bf16])
    func fusedMLPMatchesTheOpsOneByOne(_ kind: BackendKind, _ precision: Precision) throws {
        let compute = try Compute(backend: kind, threads: 2)
        var random = SeededRandom(31)
        let (rows, width, hidden) = (37, 48, 192)
        let x = random.tensor([1, rows, width], scale: 2)
        let w1 = random.tensor([hidden, width], scale: 0.3), b1 = random.tensor([hidden]), w2 = random.tensor([width, hidden], scale: 0.2)
        let b2 = random.tensor([width])
        let got = compute.feedForward(x, up: (Weight(w1, precision: precision), b1, []), down: (Weight(w2, precision: precision), b2, []))
        let bf16 = precision == .bf16
        let up = Naive.linear(bf16 ? Self.rounded(x) : x, bf16 ? Self.rounded(w1) : w1, b1)
        let g = Naive.map(up) { v in 0.5 * v * (1 + tanh(0.79788456080286536 * (v + 0.044715 * v * v * v))) }
        let expected = Naive.linear(bf16 ? Self.rounded(g) : g, bf16 ? Self.rounded(w2) : w2, b2)
        // fp32: two products and the GELU, each within a few √K·2⁻²⁴; bf16: the hidden layer is rounded once (2⁻⁹
        // relative each, averaging over the 192 terms of the second product).
        let limit = bf16 ? 0x1p-8 : 8 * Double(hidden).squareRoot() * 0x1p-24
        let error = maxRelativeError(got.data, expected.data)
        #expect(error <= limit, "\(kind) \(precision): error \(error) > \(limit)")
        if let onednn = compute.backend as? OneDNNBackend, precision == .fp32 || onednn.nativeBF16 {
            #expect(onednn.fusedProducts == 1, "oneDNN fuses the GELU and the hidden layer's form")
        }
    }
}
