import Foundation
import Kernels
import Testing
@testable import Tensors

/// The training kernels (attention backward, GELU-tanh and LayerNorm gradients) at every instruction set this CPU
/// has, each against a Double-precision twin written here.
@Suite(.serialized) struct TrainingKernelsTests {
    /// dq, dk, dv of Σ g·attention(q, k, v) per head in Double: P = softmax(q·kᵀ/√d), dV = Pᵀ·g, dP = g·Vᵀ,
    /// dS = P∘(dP − rowsum(g∘O)), dQ = dS·K/√d, dK = dSᵀ·Q/√d.
    static func attentionBackward(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ g: Tensor, heads: Int) -> (q: [Double], k: [Double], v: [Double]) {
        let (batch, queries, width, keys) = (q.dim(0), q.dim(1), q.dim(2), k.dim(1)), d = width / heads
        let scale = 1 / Double(d).squareRoot()
        var dq = [Double](repeating: 0, count: q.count), dk = [Double](repeating: 0, count: k.count), dv = dk
        for b in 0..<batch {
            for h in 0..<heads {
                func qv(_ i: Int, _ c: Int) -> Double { Double(q.data[(b * queries + i) * width + h * d + c]) }
                func kv(_ j: Int, _ c: Int) -> Double { Double(k.data[(b * keys + j) * width + h * d + c]) }
                func vv(_ j: Int, _ c: Int) -> Double { Double(v.data[(b * keys + j) * width + h * d + c]) }
                func gv(_ i: Int, _ c: Int) -> Double { Double(g.data[(b * queries + i) * width + h * d + c]) }
                for i in 0..<queries {
                    var p = (0..<keys).map { j in (0..<d).reduce(0.0) { $0 + qv(i, $1) * kv(j, $1) } * scale }
                    let top = p.max()!
                    p = p.map { exp($0 - top) }
                    let total = p.reduce(0, +)
                    p = p.map { $0 / total }
                    let o = (0..<d).map { c in (0..<keys).reduce(0.0) { $0 + p[$1] * vv($1, c) } }
                    let delta = (0..<d).reduce(0.0) { $0 + gv(i, $1) * o[$1] }
                    for j in 0..<keys {
                        let dp = (0..<d).reduce(0.0) { $0 + gv(i, $1) * vv(j, $1) }
                        let ds = p[j] * (dp - delta)
                        for c in 0..<d {
                            dv[(b * keys + j) * width + h * d + c] += p[j] * gv(i, c)
                            dq[(b * queries + i) * width + h * d + c] += ds * kv(j, c) * scale
                            dk[(b * keys + j) * width + h * d + c] += ds * qv(i, c) * scale
                        }
                    }
                }
            }
        }
        return (dq, dk, dv)
    }

    /// The forward kernel with logsumexp and the backward kernel, both on this thread at its level.
    static func run(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ g: Tensor, heads: Int, bf16: Bool,
                    block: Int) -> (q: [Float], k: [Float], v: [Float], bf16: Bool) {
        let (batch, queries, width, keys) = (q.dim(0), q.dim(1), q.dim(2), k.dim(1)), d = width / heads
        var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: batch * heads * queries)
        var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count), dv = dk
        var usedBF16 = false
        q.data.withUnsafeBufferPointer { pq in k.data.withUnsafeBufferPointer { pk in v.data.withUnsafeBufferPointer { pv in
        g.data.withUnsafeBufferPointer { pg in out.withUnsafeMutableBufferPointer { po in lse.withUnsafeMutableBufferPointer { pl in
        dq.withUnsafeMutableBufferPointer { dQ in dk.withUnsafeMutableBufferPointer { dK in dv.withUnsafeMutableBufferPointer { dV in
            var forward = sd3k_attention_t(q: pq.baseAddress, k: pk.baseAddress, v: pv.baseAddress, out: po.baseAddress, batch: batch,
                                           queries: queries, keys: keys, heads: heads, head_size: d, ldq: width, ldk: width, ldv: width,
                                           ldo: width, scale: 1 / Float(d).squareRoot(), bf16: bf16 ? 1 : 0, level: 0, packed: nil,
                                           lse: pl.baseAddress, block: 0)
            sd3k_attention_prepare(&forward)
            let packed = UnsafeMutableRawPointer.allocate(byteCount: sd3k_attention_packed_bytes(&forward), alignment: 64)
            defer { packed.deallocate() }
            forward.packed = packed
            #expect(sd3k_attention_pack(&forward, 0, batch * heads) == 0)
            #expect(sd3k_attention_run(&forward, 0, sd3k_attention_tasks(&forward)) == 0)
            var backward = sd3k_attention_backward_t(q: pq.baseAddress, k: pk.baseAddress, v: pv.baseAddress, out: po.baseAddress,
                                                     dout: pg.baseAddress, lse: pl.baseAddress, dq: dQ.baseAddress, dk: dK.baseAddress,
                                                     dv: dV.baseAddress, batch: batch, queries: queries, keys: keys, heads: heads,
                                                     head_size: d, ldq: width, ldk: width, scale: 1 / Float(d).squareRoot(),
                                                     bf16: bf16 ? 1 : 0, level: 0, block: block)
            sd3k_attention_backward_prepare(&backward)
            usedBF16 = backward.bf16 != 0
            #expect(sd3k_attention_backward_run(&backward, 0, batch * heads) == 0)
        }}}}}}}}}
        return (dq, dk, dv, usedBF16)
    }

    /// Shapes that cross the kernels' edges: one query and key, head sizes not a multiple of 16 (8, 40, 72), keys past
    /// one 256-key block, partial query blocks.
    @Test(arguments: [(1, 1, 1, 1, 1, 64), (2, 37, 333, 3, 64, 64), (1, 130, 77, 2, 8, 64), (1, 65, 300, 1, 40, 7),
                      (1, 61, 257, 2, 72, 256)])
    func attentionBackwardAgainstDouble(_ shape: (Int, Int, Int, Int, Int, Int)) {
        let (batch, queries, keys, heads, d, block) = shape
        var random = SeededRandom(UInt64(40 + queries))
        let q = random.tensor([batch, queries, heads * d], scale: 2), k = random.tensor([batch, keys, heads * d], scale: 2)
        let v = random.tensor([batch, keys, heads * d]), g = random.tensor([batch, queries, heads * d])
        let expected = Self.attentionBackward(q, k, v, g, heads: heads)
        // Sums over d, the keys and the queries (dK, dV), each within √n·2⁻²⁴ of exact, a few deep.
        let limit = 8 * (Double(d).squareRoot() + 2 * Double(keys).squareRoot() + 2 * Double(queries).squareRoot()) * 0x1p-24
        KernelsTests.eachLevel { isa in
            let got = Self.run(q, k, v, g, heads: heads, bf16: false, block: block)
            let errors = [maxRelativeError(got.q, expected.q.map(Float.init)), maxRelativeError(got.k, expected.k.map(Float.init)),
                          maxRelativeError(got.v, expected.v.map(Float.init))]
            #expect(errors.allSatisfy { $0 <= limit }, "\(isa): \(shape) dq, dk, dv errors \(errors) > \(limit)")
            guard sd3k_isa() >= Int32(SD3K_ISA_AVX512_BF16) else { return }
            // bf16 operands: q·scale, k, v, dO, P and dS each rounded once (2⁻⁹ relative), fp32 sums.
            let bf16 = Self.run(q, k, v, g, heads: heads, bf16: true, block: block)
            #expect(bf16.bf16, "\(isa): the bf16 backward did not run")
            let bf16Errors = [maxRelativeError(bf16.q, expected.q.map(Float.init)), maxRelativeError(bf16.k, expected.k.map(Float.init)),
                              maxRelativeError(bf16.v, expected.v.map(Float.init))]
            #expect(bf16Errors.allSatisfy { $0 <= 0x1p-5 }, "\(isa): bf16 \(shape) errors \(bf16Errors)")
            if keys > 1 { #expect(bf16Errors.contains { $0 > limit }, "\(isa): bf16 operands gave fp32 accuracy \(bf16Errors)") }
        }
    }

    /// dy·GELU'(x) of the tanh form against its Double formula, across the range where tanh saturates.
    @Test func geluTanhGradient() {
        let xs = stride(from: -9.0, through: 9.0, by: 0.0173).map(Float.init)
        var random = SeededRandom(7)
        let dy = random.tensor([xs.count]).data
        let expected = zip(xs, dy).map { x, g -> Float in
            let (v, c, a) = (Double(x), 0.7978845608028654, 0.044715)
            let t = tanh(c * (v + a * v * v * v))
            return Float(Double(g) * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * a * v * v)))
        }
        KernelsTests.eachLevel { isa in
            var out = [Float](repeating: .nan, count: xs.count)
            xs.withUnsafeBufferPointer { x in dy.withUnsafeBufferPointer { g in out.withUnsafeMutableBufferPointer {
                sd3k_gelu_tanh_grad(x.baseAddress!, g.baseAddress!, $0.baseAddress!, xs.count)
            }}}
            // exp within 3 ulp and a handful of fp32 operations: measured ≤ 1e-7 of the largest value.
            #expect(maxRelativeError(out, expected) <= 1e-6, "\(isa): GELU-tanh gradient error \(maxRelativeError(out, expected))")
        }
    }

    /// LayerNorm's input gradient, with and without a gain, over widths that leave vector tails.
    @Test func layerNormGradientRows() {
        var random = SeededRandom(11)
        for width in [1, 7, 16, 33, 1536] {
            let x = random.tensor([width], scale: 3).data.map { $0 + 0.5 }, dy = random.tensor([width]).data
            let gain = random.tensor([width]).data.map { 1 + $0 / 2 }
            for useGain in [false, true] {
                let g = zip(dy, gain).map { Double($0) * (useGain ? Double($1) : 1) }
                let mean = x.reduce(0.0) { $0 + Double($1) } / Double(width)
                let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(width)
                let inverse = 1 / (variance + 1e-6).squareRoot()
                let xHat = x.map { (Double($0) - mean) * inverse }
                let (gMean, gxMean) = (g.reduce(0, +) / Double(width), zip(g, xHat).reduce(0.0) { $0 + $1.0 * $1.1 } / Double(width))
                let expected = zip(g, xHat).map { Float(($0 - gMean - $1 * gxMean) * inverse) }
                KernelsTests.eachLevel { isa in
                    var out = [Float](repeating: .nan, count: width)
                    var (m, inv): (Float, Float) = (0, 0)
                    x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { gp in gain.withUnsafeBufferPointer { wp in
                        out.withUnsafeMutableBufferPointer {
                            sd3k_layer_norm_grad_row(xp.baseAddress!, gp.baseAddress!, useGain ? wp.baseAddress : nil, $0.baseAddress!,
                                                     width, 1e-6, &m, &inv)
                        }
                    }}}
                    // fp32 with Double row sums (measured ≤ 2.4e-7 at width 1000; a width-1 row's gradient is exactly 0).
                    let error = maxRelativeError(out, expected)
                    #expect(error <= 1e-5, "\(isa): width \(width), gain \(useGain): error \(error)")
                    #expect(abs(Double(m) - mean) <= 1e-6 * max(1, abs(mean)) && abs(Double(inv) - inverse) <= 1e-5 * inverse,
                            "\(isa): width \(width): mean \(m) vs \(mean), 1/σ \(inv) vs \(inverse)")
                }
            }
        }
    }
}
