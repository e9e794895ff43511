import Foundation
import Kernels
import Testing
@testable import Tensors

/// The C kernels at every instruction set this CPU has (baseline, AVX2, AVX-512, AVX-512 with bf16), each against
/// a Double-precision twin, so a machine with AVX-512 also proves the AVX2 and baseline code.
@Suite(.serialized) struct KernelsTests {
    static var levels: [Int32] { Array(Int32(SD3K_ISA_BASELINE)...sd3k_cpu_isa()) }

    /// Runs `body` once per level on this thread only: the tests running beside these in the process keep its level
    /// (switching the process's level made a bit-exact comparison in another suite fail when the two overlapped).
    static func eachLevel(_ body: (String) throws -> Void) rethrows {
        defer { sd3k_set_thread_isa(-1) }
        for level in levels {
            #expect(sd3k_set_thread_isa(level) == level)
            try body(String(cString: sd3k_isa_name(level)))
        }
    }

    static func apply(_ xs: [Float], _ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
        var out = [Float](repeating: .nan, count: xs.count)
        xs.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { f(x.baseAddress!, $0.baseAddress!, xs.count) } }
        return out
    }

    @Test func expWithinThreeUlpAndEdgeCases() {
        let xs = stride(from: -87.0, through: 88.5, by: 0.000731).map(Float.init) + [0, -0, 1e-8, -1e-8, 0.3465, -0.3466]
        let edges: [Float] = [-.infinity, .infinity, .nan, -100, -87.4, 88.8, 1000, -1000, 0, 88.7]
        Self.eachLevel { isa in
            let ys = Self.apply(xs) { sd3k_exp($0, $1, $2) }
            let worst = zip(xs, ys).map { x, y in abs(Double(y) - Foundation.exp(Double(x))) / Double(Float(Foundation.exp(Double(x))).ulp) }.max()!
            #expect(worst <= 3, "\(isa): worst error \(worst) ulp")
            let e = Self.apply(edges) { sd3k_exp($0, $1, $2) }
            #expect(e[0] == 0 && e[1] == .infinity && e[2].isNaN && e[3] == 0 && e[4] == 0 && e[5] == .infinity, "\(isa): \(e)")
            #expect(e[6] == .infinity && e[7] == 0 && e[8] == 1 && e[9].isFinite, "\(isa): \(e)")
        }
    }

    @Test func activationsAgainstTheirFormulas() {
        var random = SeededRandom(11)
        let xs = (0..<1003).map { _ in random.uniform() * 12 } + [0, -0, 1e-30, -50, 50, .nan]
        Self.eachLevel { isa in
            let gelu = Self.apply(xs) { sd3k_gelu_tanh($0, $1, $2) }
            let silu = Self.apply(xs) { sd3k_sigmoid_mul($0, $1, $2, 1) }
            let quick = Self.apply(xs) { sd3k_sigmoid_mul($0, $1, $2, 1.702) }
            for (i, x) in xs.enumerated() where !x.isNaN {
                let v = Double(x)
                let exact = 0.5 * v * (1 + tanh(0.79788456080286536 * (v + 0.044715 * v * v * v)))
                #expect(abs(Double(gelu[i]) - exact) <= 3e-7 * max(1, abs(v)), "\(isa): gelu(\(x)) = \(gelu[i]), exact \(exact)")
                #expect(abs(Double(silu[i]) - v / (1 + exp(-v))) <= 3e-7 * max(1, abs(v)), "\(isa): silu(\(x)) = \(silu[i])")
                #expect(abs(Double(quick[i]) - v / (1 + exp(-1.702 * v))) <= 3e-7 * max(1, abs(v)), "\(isa): quick(\(x)) = \(quick[i])")
            }
            #expect(gelu.last!.isNaN && silu.last!.isNaN, "\(isa): NaN must stay NaN")
        }
    }

    @Test func softmaxRowsOfManyWidths() {
        var random = SeededRandom(12)
        Self.eachLevel { isa in
            for width in [1, 7, 16, 17, 77, 333, 1024] {
                let x = random.tensor([3, width], scale: 20)
                let got = Tensor(shape: x.shape, data: Self.apply(x.data) { input, output, _ in
                    for r in 0..<3 { sd3k_softmax_row(input + r * width, output + r * width, width) }
                })
                let error = maxRelativeError(got.data, Naive.softmax(x).data)
                #expect(error <= 4 * Double(width).squareRoot() * 0x1p-24 + 0x1p-22, "\(isa): width \(width) error \(error)")
            }
            let masked = Self.apply([-.infinity, -.infinity, -.infinity]) { sd3k_softmax_row($0, $1, $2) }
            #expect(masked.allSatisfy { $0.isNaN }, "\(isa): a fully masked row gives NaN, as torch")
        }
    }

    @Test func normsAndModulationAgainstNaive() {
        var random = SeededRandom(13)
        Self.eachLevel { isa in
            for width in [1, 5, 64, 1536, 1541] {
                let x = random.tensor([4, width], scale: 3)
                let weight = random.tensor([width]), bias = random.tensor([width]), shift = random.tensor([width]), scale = random.tensor([width])
                let rows = Array(0..<4)
                func run(_ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> [Float] {
                    Self.apply(x.data) { input, output, _ in for r in rows { f(input + r * width, output + r * width) } }
                }
                let ln = run { i, o in weight.data.withUnsafeBufferPointer { w in bias.data.withUnsafeBufferPointer { b in
                    sd3k_layer_norm_row(i, o, width, 1e-5, w.baseAddress, b.baseAddress) } } }
                let plain = run { i, o in sd3k_layer_norm_row(i, o, width, 1e-6, nil, nil) }
                let rms = run { i, o in weight.data.withUnsafeBufferPointer { sd3k_rms_norm_row(i, o, width, 1e-6, $0.baseAddress) } }
                let fused = run { i, o in shift.data.withUnsafeBufferPointer { s in scale.data.withUnsafeBufferPointer { c in
                    sd3k_norm_modulate_row(i, o, width, 1e-6, s.baseAddress, c.baseAddress) } } }
                let modulated = run { i, o in shift.data.withUnsafeBufferPointer { s in scale.data.withUnsafeBufferPointer { c in
                    sd3k_modulate_row(i, o, width, s.baseAddress, c.baseAddress) } } }
                let gated = run { i, o in shift.data.withUnsafeBufferPointer { y in scale.data.withUnsafeBufferPointer { g in
                    sd3k_gated_add_row(i, y.baseAddress, g.baseAddress, o, width) } } }
                let limit = 8 * Double(width).squareRoot() * 0x1p-24 + 0x1p-22
                let naivePlain = Naive.layerNorm(x, nil, nil, eps: 1e-6).data
                var expectedFused = [Float](), expectedModulated = [Float](), expectedGated = [Float]()
                for r in rows {
                    for i in 0..<width {
                        let v = Double(x.data[r * width + i]), s = Double(shift.data[i]), c = Double(scale.data[i])
                        expectedFused.append(Float(Double(naivePlain[r * width + i]) * (1 + c) + s))
                        expectedModulated.append(Float(v * (1 + c) + s))
                        expectedGated.append(Float(v + c * s))
                    }
                }
                for (name, got, expected) in [("layer norm", ln, Naive.layerNorm(x, weight, bias, eps: 1e-5).data),
                                              ("layer norm without affine", plain, naivePlain),
                                              ("rms norm", rms, Naive.rmsNorm(x, weight, eps: 1e-6).data),
                                              ("norm + modulate", fused, expectedFused),
                                              ("modulate", modulated, expectedModulated), ("gated add", gated, expectedGated)] {
                    let error = maxRelativeError(got, expected)
                    #expect(error <= limit, "\(isa): \(name) width \(width) error \(error) > \(limit)")
                }
            }
        }
    }

    @Test func bf16RoundingIsTorchsBitForBit() {
        var random = SeededRandom(14)
        let specials: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                                 Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_7FFF),
                                 Float(bitPattern: 0x7F7F_FFFF), Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x7FA0_0001)]
        let xs = specials + (0..<4099).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: random.next())) }
        Self.eachLevel { isa in
            var bits = [UInt16](repeating: 0, count: xs.count)
            xs.withUnsafeBufferPointer { x in bits.withUnsafeMutableBufferPointer { sd3k_round_bf16(x.baseAddress!, $0.baseAddress!, xs.count) } }
            let mismatches = zip(xs, bits).filter { HalfPrecision.bf16($0) != $1 }
            #expect(mismatches.isEmpty, "\(isa): \(mismatches.prefix(4).map { "\(String($0.bitPattern, radix: 16)) → \(String($1, radix: 16))" })")
            var back = [Float](repeating: 0, count: bits.count)
            bits.withUnsafeBufferPointer { b in back.withUnsafeMutableBufferPointer { sd3k_widen_bf16(b.baseAddress!, $0.baseAddress!, bits.count) } }
            #expect(zip(bits, back).allSatisfy { $1.bitPattern == UInt32($0) << 16 }, "\(isa): widening is exact")
        }
    }

    /// Flash attention against full-matrix attention in Double, over shapes that cross every block edge.
    @Test(arguments: [(1, 1, 1, 1, 1), (2, 37, 333, 3, 64), (1, 130, 77, 2, 8), (1, 65, 300, 1, 40), (1, 9, 513, 1, 512),
                      (1, 61, 257, 2, 72)])
    func flashAttentionAgainstFullMatrix(_ shape: (Int, Int, Int, Int, Int)) throws {
        let (batch, queries, keys, heads, d) = shape
        var random = SeededRandom(UInt64(15 + queries))
        let q = random.tensor([batch, queries, heads * d], scale: 2), k = random.tensor([batch, keys, heads * d], scale: 2)
        let v = random.tensor([batch, keys, heads * d])
        let rows = Naive.attention(q, k, v, heads: heads, scale: nil, causal: false, bias: nil)
        let expected = (0..<batch * queries).flatMap { rows[$0]! }
        let compute = try Compute(backend: .oneDNN, threads: 2)
        // Three reductions (q·k over d, the softmax sum and p·v over the keys), each within √K·2⁻²⁴ of exact.
        let limit = 4 * (Double(d).squareRoot() + 2 * Double(keys).squareRoot()) * 0x1p-24
        try Self.eachLevel { isa in
            let got = compute.attention(query: q, key: k, value: v, heads: heads)
            let error = maxRelativeError(got.data, expected)
            #expect(error <= limit, "\(isa): \(shape) error \(error) > \(limit)")
            guard sd3k_isa() >= Int32(SD3K_ISA_AVX512_BF16) else { return }
            // bf16 operands: q·scale, k, v and the probabilities each rounded once (2⁻⁹ relative), fp32 sums.
            let bf16 = compute.attention(query: q, key: k, value: v, heads: heads, operands: .bf16)
            let bf16Error = maxRelativeError(bf16.data, expected)
            #expect(bf16Error <= 0x1p-6, "\(isa): bf16 \(shape) error \(bf16Error)")
            if keys > 1 { #expect(bf16Error > limit, "\(isa): bf16 operands should not give fp32 accuracy (\(bf16Error)): did the bf16 path run?") }
            _ = try #require(got.data.allSatisfy(\.isFinite) ? got : nil)
        }
    }
}
