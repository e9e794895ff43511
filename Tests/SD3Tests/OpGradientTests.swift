import Foundation
import Tensors
import Testing
@testable import Training

/// Each op's backward against central finite differences of a forward written here in Double (an independent truth):
/// for L = Σ g·f(x) with a random g, dL/dxᵢ ≈ (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h, h = 1e-4, whose error is O(h²)·f‴
/// ≈ 1e-8 relative; ours runs in fp32 (u = 6e-8, sums of ≤ 33 terms), so ‖ours − fd‖/‖fd‖ ≤ 1e-6 leaves room for
/// fp32 rounding only (measured: ≤ 1.8e-7, attention's dq on OpenBLAS).
@Suite struct OpGradientTests {
    static let limit = 1e-6

    static func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        let data = (0..<shape.reduce(1, *)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
        return Tensor(shape: shape, data: data)
    }

    /// d/dx of Σ g·f(x) by central differences.
    static func numerical(_ x: Tensor, _ g: Tensor, _ f: ([Double]) -> [Double]) -> [Double] {
        let base = x.data.map(Double.init), weights = g.data.map(Double.init), h = 1e-4
        func loss(_ v: [Double]) -> Double { zip(f(v), weights).reduce(0) { $0 + $1.0 * $1.1 } }
        return (0..<base.count).map { i in
            var plus = base, minus = base
            plus[i] += h
            minus[i] -= h
            return (loss(plus) - loss(minus)) / (2 * h)
        }
    }

    static func relative(_ actual: Tensor, _ expected: [Double]) -> Double {
        let difference = zip(actual.data, expected).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }
        return (difference / max(expected.reduce(0.0) { $0 + $1 * $1 }, .leastNormalMagnitude)).squareRoot()
    }

    /// Rows of `width` of v, each mapped by `f`.
    static func rows(_ v: [Double], width: Int, _ f: ([Double]) -> [Double]) -> [Double] {
        stride(from: 0, to: v.count, by: width).flatMap { f(Array(v[$0..<$0 + width])) }
    }

    static func layerNorm(_ row: [Double], weight: [Double]?, eps: Double) -> [Double] {
        let mean = row.reduce(0, +) / Double(row.count)
        let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(row.count)
        return row.enumerated().map { i, v in (v - mean) / (variance + eps).squareRoot() * (weight?[i] ?? 1) }
    }

    @Test(arguments: [false, true])
    func layerNorm(affine: Bool) {
        let x = Self.random([3, 5, 16], seed: 1, scale: 2), g = Self.random(x.shape, seed: 2)
        let weight = affine ? Self.random([16], seed: 3) : nil
        let ours = OpGradients.layerNorm(x, g, weight: weight, eps: 1e-6)
        let fd = Self.numerical(x, g) { Self.rows($0, width: 16) { Self.layerNorm($0, weight: weight?.data.map(Double.init), eps: 1e-6) } }
        #expect(Self.relative(ours, fd) <= Self.limit, "layer norm (affine \(affine)): \(Self.relative(ours, fd))")
    }

    @Test func rmsNorm() {
        let x = Self.random([2, 3, 4, 8], seed: 4, scale: 1.5), g = Self.random(x.shape, seed: 5), weight = Self.random([8], seed: 6)
        let ours = OpGradients.rmsNorm(x, g, weight: weight, eps: 1e-6)
        let fd = Self.numerical(x, g) { v in
            Self.rows(v, width: 8) { row in
                let r = 1 / (row.reduce(0) { $0 + $1 * $1 } / 8 + 1e-6).squareRoot()
                return row.enumerated().map { i, value in value * r * Double(weight.data[i]) }
            }
        }
        #expect(Self.relative(ours, fd) <= Self.limit, "RMS norm: \(Self.relative(ours, fd))")
    }

    @Test func activations() {
        let x = Self.random([4, 33], seed: 7, scale: 4), g = Self.random(x.shape, seed: 8)
        let gelu = Self.numerical(x, g) { $0.map { v in 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v))) } }
        #expect(Self.relative(OpGradients.geluTanh(x, g), gelu) <= Self.limit, "GELU-tanh: \(Self.relative(OpGradients.geluTanh(x, g), gelu))")
        let silu = Self.numerical(x, g) { $0.map { v in v / (1 + exp(-v)) } }
        #expect(Self.relative(OpGradients.silu(x, g), silu) <= Self.limit, "SiLU: \(Self.relative(OpGradients.silu(x, g), silu))")
    }

    /// LN(x)·(1 + scale) + shift and x + gate·y, each operand's gradient.
    @Test func modulationAndGatedResidual() {
        let (b, n, d) = (2, 3, 16)
        let x = Self.random([b, n, d], seed: 9, scale: 2), g = Self.random(x.shape, seed: 10)
        let shift = Self.random([b, d], seed: 11), scale = Self.random([b, d], seed: 12)
        let ours = OpGradients.normModulate(x, g, scale: scale, eps: 1e-6)
        func modulated(_ x: [Double], _ shift: [Double], _ scale: [Double]) -> [Double] {
            let normed = Self.rows(x, width: d) { Self.layerNorm($0, weight: nil, eps: 1e-6) }
            return normed.enumerated().map { i, v in
                let column = (i / (n * d)) * d + i % d
                return v * (1 + scale[column]) + shift[column]
            }
        }
        let (s, c) = (shift.data.map(Double.init), scale.data.map(Double.init))
        let dx = Self.numerical(x, g) { modulated($0, s, c) }
        let dShift = Self.numerical(shift, g) { modulated(x.data.map(Double.init), $0, c) }
        let dScale = Self.numerical(scale, g) { modulated(x.data.map(Double.init), s, $0) }
        #expect(Self.relative(ours.x, dx) <= Self.limit, "normModulate dx: \(Self.relative(ours.x, dx))")
        #expect(Self.relative(ours.shift, dShift) <= Self.limit, "normModulate dshift: \(Self.relative(ours.shift, dShift))")
        #expect(Self.relative(ours.scale, dScale) <= Self.limit, "normModulate dscale: \(Self.relative(ours.scale, dScale))")

        let y = Self.random(x.shape, seed: 13), gate = Self.random([b, d], seed: 14)
        let gated = OpGradients.gatedAdd(g, y: y, gate: gate)
        func residual(_ y: [Double], _ gate: [Double]) -> [Double] {
            y.enumerated().map { i, v in Double(x.data[i]) + gate[(i / (n * d)) * d + i % d] * v }
        }
        let dy = Self.numerical(y, g) { residual($0, gate.data.map(Double.init)) }
        let dGate = Self.numerical(gate, g) { residual(y.data.map(Double.init), $0) }
        #expect(Self.relative(gated.y, dy) <= Self.limit, "gatedAdd dy: \(Self.relative(gated.y, dy))")
        #expect(Self.relative(gated.gate, dGate) <= Self.limit, "gatedAdd dgate: \(Self.relative(gated.gate, dGate))")
    }

    /// softmax(q·kᵀ/√d)·v per head in Double; q [B, Nq, H·d], k and v [B, Nk, H·d].
    static func attention(_ q: [Double], _ k: [Double], _ v: [Double], batch: Int, queries: Int, keys: Int, heads: Int, d: Int) -> [Double] {
        let width = heads * d
        var out = [Double](repeating: 0, count: batch * queries * width)
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<queries {
                    let scores = (0..<keys).map { j in
                        (0..<d).reduce(0.0) { $0 + q[(b * queries + i) * width + h * d + $1] * k[(b * keys + j) * width + h * d + $1] } / Double(d).squareRoot()
                    }
                    let top = scores.max()!, e = scores.map { exp($0 - top) }, total = e.reduce(0, +)
                    for c in 0..<d {
                        out[(b * queries + i) * width + h * d + c] = (0..<keys).reduce(0.0) { $0 + e[$1] / total * v[(b * keys + $1) * width + h * d + c] }
                    }
                }
            }
        }
        return out
    }

    /// Query blocks of 2 rows (several blocks, a partial last one), Nq ≠ Nk, on both backends.
    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func attention(backend: BackendKind) throws {
        let (batch, queries, keys, heads, d) = (2, 5, 7, 3, 4)
        let compute = try Compute(backend: backend, threads: 2)
        let q = Self.random([batch, queries, heads * d], seed: 15, scale: 1.5), k = Self.random([batch, keys, heads * d], seed: 16, scale: 1.5)
        let v = Self.random([batch, keys, heads * d], seed: 17), g = Self.random(q.shape, seed: 18)
        let (out, lse) = compute.attentionForward(query: q, key: k, value: v, heads: heads, block: 2)
        let expected = Self.attention(q.data.map(Double.init), k.data.map(Double.init), v.data.map(Double.init),
                                      batch: batch, queries: queries, keys: keys, heads: heads, d: d)
        #expect(Self.relative(out, expected) <= 1e-6, "attention forward: \(Self.relative(out, expected))")
        let ours = compute.attentionBackward(query: q, key: k, value: v, output: out, logsumexp: lse, gradient: g, heads: heads, block: 2)
        let (qd, kd, vd) = (q.data.map(Double.init), k.data.map(Double.init), v.data.map(Double.init))
        let f = { (q: [Double], k: [Double], v: [Double]) in Self.attention(q, k, v, batch: batch, queries: queries, keys: keys, heads: heads, d: d) }
        let dq = Self.numerical(q, g) { f($0, kd, vd) }, dk = Self.numerical(k, g) { f(qd, $0, vd) }, dv = Self.numerical(v, g) { f(qd, kd, $0) }
        #expect(Self.relative(ours.q, dq) <= Self.limit, "attention dq: \(Self.relative(ours.q, dq))")
        #expect(Self.relative(ours.k, dk) <= Self.limit, "attention dk: \(Self.relative(ours.k, dk))")
        #expect(Self.relative(ours.v, dv) <= Self.limit, "attention dv: \(Self.relative(ours.v, dv))")
    }

    /// Rows and elements split across threads give the one-thread results bit for bit (a row's sums stay in one
    /// thread); the tensors are large enough that the loops do split.
    @Test func threadsChangeNoBits() {
        let x = Self.random([3, 700, 64], seed: 25, scale: 2), g = Self.random(x.shape, seed: 26), w = Self.random([64], seed: 27)
        let scale = Self.random([3, 64], seed: 28)
        #expect(OpGradients.layerNorm(x, g, weight: w, eps: 1e-6, threads: 2) == OpGradients.layerNorm(x, g, weight: w, eps: 1e-6))
        #expect(OpGradients.rmsNorm(x, g, weight: w, eps: 1e-6, threads: 2) == OpGradients.rmsNorm(x, g, weight: w, eps: 1e-6))
        #expect(OpGradients.geluTanh(x, g, threads: 2) == OpGradients.geluTanh(x, g))
        #expect(OpGradients.silu(x, g, threads: 2) == OpGradients.silu(x, g))
        let (two, one) = (OpGradients.normModulate(x, g, scale: scale, eps: 1e-6, threads: 2), OpGradients.normModulate(x, g, scale: scale, eps: 1e-6))
        #expect(two.x == one.x && two.shift == one.shift && two.scale == one.scale)
    }

    /// y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ: dx, dA, dB.
    @Test func linearWithLora() throws {
        let (rows, inWidth, outWidth, rank) = (5, 6, 7, 3)
        let compute = try Compute(backend: .openBLAS, threads: 2)
        let w = Self.random([outWidth, inWidth], seed: 19), bias = Self.random([outWidth], seed: 20)
        let a = Self.random([rank, inWidth], seed: 21), bMatrix = Self.random([outWidth, rank], seed: 22)
        let x = Self.random([1, rows, inWidth], seed: 23), g = Self.random([1, rows, outWidth], seed: 24)
        let module = LoraModule(down: a, up: bMatrix, scale: 0.75)
        var used = Set<String>()
        let layer = try AdaptedLinear(name: "layer", weight: w, bias: bias, precision: .fp32,
                                      loras: LoraParameters(modules: ["layer": module]), used: &used)
        let dx = layer.backward(g, input: x, compute)!
        func forward(_ x: [Double], _ a: [Double], _ b: [Double]) -> [Double] {
            (0..<rows).flatMap { r in
                let u = (0..<rank).map { j in (0..<inWidth).reduce(0.0) { $0 + x[r * inWidth + $1] * a[j * inWidth + $1] } }
                return (0..<outWidth).map { o in
                    (0..<inWidth).reduce(Double(bias.data[o])) { $0 + x[r * inWidth + $1] * Double(w.data[o * inWidth + $1]) }
                        + 0.75 * (0..<rank).reduce(0.0) { $0 + u[$1] * b[o * rank + $1] }
                }
            }
        }
        let (xd, ad, bd) = (x.data.map(Double.init), a.data.map(Double.init), bMatrix.data.map(Double.init))
        #expect(Self.relative(dx, Self.numerical(x, g) { forward($0, ad, bd) }) <= Self.limit)
        #expect(Self.relative(module.gradDown, Self.numerical(a, g) { forward(xd, $0, bd) }) <= Self.limit)
        #expect(Self.relative(module.gradUp, Self.numerical(bMatrix, g) { forward(xd, ad, $0) }) <= Self.limit)
    }
}
