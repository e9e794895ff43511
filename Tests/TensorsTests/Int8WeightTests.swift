import Foundation
import Testing
@testable import Tensors

/// Weight-only int8 (per-row scales) against a naive quantize → dequantize → fp64 product, and its properties.
@Suite struct Int8WeightTests {
    /// The definition written out directly: s = max|w|/127, q = round_half_even(w/s), w' = q·s.
    static func naiveDequantized(_ w: Tensor) -> Tensor {
        let rows = w.dim(0), columns = w.count / rows
        var out = [Float](repeating: 0, count: w.count)
        for r in 0..<rows {
            let row = Array(w.data[r * columns..<(r + 1) * columns])
            let s = row.map(abs).max()! / 127
            for j in 0..<columns { out[r * columns + j] = s == 0 ? 0 : Float((row[j] / s).rounded(.toNearestOrEven)) * s }
        }
        return Tensor(shape: w.shape, data: out)
    }

    /// 600 output rows over K = 8192 makes three tiles (256, 256, 88), so the column offsets are exercised.
    @Test(arguments: [BackendKind.oneDNN, .openBLAS], [false, true])
    func linearEqualsTheDequantizedProduct(kind: BackendKind, withBias: Bool) throws {
        var random = SeededRandom(11)
        let x = random.tensor([5, 8192]), w = random.tensor([600, 8192], scale: 0.02), b = random.tensor([600])
        let compute = try Compute(backend: kind, threads: 2)
        let y = compute.linear(x, Weight(w, format: .int8), bias: withBias ? b : nil)
        let expected = Naive.linear(x, Self.naiveDequantized(w), withBias ? b : nil)
        #expect(y.shape == [5, 600])
        #expect(nmse(y.data, expected.data) < 1e-12)
    }

    @Test func quantizationProperties() {
        var random = SeededRandom(12)
        var w = random.tensor([4, 100], scale: 3)
        for j in 0..<100 { w.data[2 * 100 + j] = 0 }  // a zero row
        let weight = Weight(w, format: .int8)
        #expect(weight.byteCount == 400 + 4 * 4)
        #expect(weight.precision == .fp32)
        #expect(weight.scales[2] == 0 && weight.int8[200..<300].allSatisfy { $0 == 0 })
        for r in [0, 1, 3] {
            let row = w.data[r * 100..<(r + 1) * 100], q = weight.int8[r * 100..<(r + 1) * 100]
            #expect(q.map { abs(Int($0)) }.max() == 127, "the largest magnitude maps to ±127")
            for (value, code) in zip(row, q) { #expect(abs(Float(code) * weight.scales[r] - value) <= weight.scales[r] / 2 * 1.0001) }
        }
        var out = [Float](repeating: .nan, count: 400)
        out.withUnsafeMutableBufferPointer { weight.dequantize(rows: 0..<4, into: $0.baseAddress!, threads: 2) }
        #expect(out == Self.naiveDequantized(w).data)
    }
}
