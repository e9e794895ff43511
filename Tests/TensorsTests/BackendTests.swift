import Foundation
import Testing
@testable import Tensors

/// oneDNN and OpenBLAS against each other on the raw backend interface, and bf16 against fp32.
@Suite struct BackendTests {
    struct Case: Sendable, CustomStringConvertible {
        var d: GemmDescriptor
        var description: String { "\(d.m)×\(d.n)×\(d.k) tB=\(d.transposeB) ld=(\(d.lda),\(d.ldb),\(d.ldc)) α=\(d.alpha) acc=\(d.accumulate) bias=\(d.hasBias)" }
    }

    static let cases: [Case] = [
        Case(d: GemmDescriptor(m: 64, n: 48, k: 80, transposeB: true, hasBias: true)),
        Case(d: GemmDescriptor(m: 33, n: 17, k: 9, transposeB: false)),
        Case(d: GemmDescriptor(m: 10, n: 12, k: 16, transposeB: true, lda: 48, ldb: 48, ldc: 40, alpha: 0.25)),
        Case(d: GemmDescriptor(m: 10, n: 16, k: 12, transposeB: false, lda: 12, ldb: 48, ldc: 48, accumulate: true)),
        Case(d: GemmDescriptor(m: 5, n: 7, k: 300, transposeB: true, accumulate: true, hasBias: true)),
    ]

    /// Runs one product with operands filled from `random`; C starts from a fixed pattern so accumulation shows.
    func run(_ d: GemmDescriptor, on backend: any ComputeBackend, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed)
        let a = (0..<d.m * d.lda).map { _ in random.uniform() }
        let b = (0..<(d.transposeB ? d.n : d.k) * d.ldb).map { _ in random.uniform() }
        let bias = (0..<d.n).map { _ in random.uniform() }
        var c = (0..<d.m * d.ldc).map { Float($0 % 7) - 3 }
        let run = { (pa: UnsafeRawPointer, pb: UnsafeRawPointer) in
            bias.withUnsafeBufferPointer { pbias in
                c.withUnsafeMutableBufferPointer { pc in
                    backend.gemm(d, a: pa, b: pb, bias: d.hasBias ? pbias.baseAddress : nil, c: pc.baseAddress!)
                }
            }
        }
        if d.operandType == .fp32 {
            a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in run(pa.baseAddress!, pb.baseAddress!) } }
        } else {
            a.map(HalfPrecision.bf16).withUnsafeBytes { pa in b.map(HalfPrecision.bf16).withUnsafeBytes { pb in run(pa.baseAddress!, pb.baseAddress!) } }
        }
        return c
    }

    @Test(arguments: cases)
    func oneDNNMatchesOpenBLAS(_ c: Case) {
        let x = run(c.d, on: Backends.oneDNN.backend, seed: 11)
        let y = run(c.d, on: Backends.openBLAS.backend, seed: 11)
        let e = nmse(x, y)
        #expect(e <= 1e-12, "\(c): NMSE \(e), first \(x.prefix(4)) vs \(y.prefix(4))")
    }

    @Test(arguments: cases)
    func bf16WithinRoundingBounds(_ c: Case) {
        var d = c.d
        d.operandType = .bf16
        let full = run(c.d, on: Backends.oneDNN.backend, seed: 12)
        let half = run(d, on: Backends.oneDNN.backend, seed: 12)
        let emulated = run(d, on: Backends.openBLAS.backend, seed: 12)
        // Each bf16 operand carries a relative error ≤ 2⁻⁹, so each product ≤ ~2⁻⁸ of |a·b|; with operands
        // in [-1, 1] the sum of |a·b| is at most k, so an element may move by at most k·2⁻⁸ (·alpha).
        let bound = Float(d.k) * 0x1p-8 * abs(d.alpha) + 1e-5
        let worst = zip(full, half).map { abs($0 - $1) }.max()!
        #expect(worst <= bound, "\(c): bf16 differs from fp32 by \(worst) > \(bound)")
        #expect(worst > 0, "\(c): bf16 gave bit-identical fp32 results: the bf16 path did not run")
        let e = nmse(half, emulated)
        #expect(e <= 1e-12, "\(c): oneDNN bf16 vs widened bf16 on OpenBLAS NMSE \(e)")
    }

    @Test func convolutionsAgreeAndBF16IsClose() throws {
        var random = SeededRandom(13)
        let x = random.tensor([1, 16, 24, 20]), w = random.tensor([8, 16, 3, 3], scale: 0.2), b = random.tensor([8])
        let viaDNNL = Backends.oneDNN.conv2d(x, Weight(w), bias: b, stride: 2, padding: Padding(top: 0, bottom: 1, left: 0, right: 1))
        let viaBLAS = Backends.openBLAS.conv2d(x, Weight(w), bias: b, stride: 2, padding: Padding(top: 0, bottom: 1, left: 0, right: 1))
        expectClose(viaDNNL, viaBLAS, nmse: 1e-12, "conv oneDNN vs OpenBLAS")
        let halfDNNL = Backends.oneDNN.conv2d(x, Weight(w, precision: .bf16), bias: b, padding: .symmetric(1))
        let halfBLAS = Backends.openBLAS.conv2d(x, Weight(w, precision: .bf16), bias: b, padding: .symmetric(1))
        let full = Backends.oneDNN.conv2d(x, Weight(w), bias: b, padding: .symmetric(1))
        expectClose(halfDNNL, halfBLAS, nmse: 1e-12, "bf16 conv oneDNN vs widened OpenBLAS")
        let e = nmse(halfDNNL.data, full.data)
        #expect(e > 0 && e < 1e-4, "bf16 conv vs fp32 NMSE \(e)")
    }

    @Test func linearInBF16() {
        var random = SeededRandom(14)
        let x = random.tensor([40, 256]), w = random.tensor([96, 256], scale: 0.1), b = random.tensor([96])
        let full = Backends.oneDNN.linear(x, Weight(w), bias: b)
        let half = Backends.oneDNN.linear(x, Weight(w, precision: .bf16), bias: b)
        let e = nmse(half.data, full.data)
        #expect(e > 0 && e < 1e-4, "bf16 linear vs fp32 NMSE \(e)")
    }
}
