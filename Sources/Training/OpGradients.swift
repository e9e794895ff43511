import Foundation
import Kernels
import Tensors

/// Backward of the MMDiT's elementwise and row-wise ops, in fp32 with Double sums (LayerNorm and GELU on the Kernels
/// vector loops, whose row sums are Double too). Each takes the op's forward input (recomputing what it needs) and
/// dL/d(output), and returns dL/d(input) (and of the other operands). Row-wise and elementwise loops split across
/// `threads` (Tensors' OpenMP pool, as the forward ops); sums over tokens run per column in token order, so the
/// thread count changes no bits.
public enum OpGradients {
    /// y = (x − μ)/σ·w + b over the last axis (σ = sqrt(var + eps), biased variance; w, b optional) →
    /// dx = (g − mean(g) − x̂·mean(g·x̂))/σ with g = dy·w, x̂ = (x − μ)/σ.
    public static func layerNorm(_ x: Tensor, _ dy: Tensor, weight: Tensor? = nil, eps: Float, threads: Int = 1) -> Tensor {
        if let weight { precondition(weight.count == x.dim(-1), "layerNorm backward: weight \(weight.shape) for rows of \(x.dim(-1))") }
        return layerNormRows(x, dy, eps: eps, threads: threads, gains: weight, rowsPerGain: max(1, x.count / max(1, x.dim(-1)))).x
    }

    /// `layerNorm` with gains [G, width] (nil: none; row r uses gain row r / rowsPerGain), and each row's mean and 1/σ.
    static func layerNormRows(_ x: Tensor, _ dy: Tensor, eps: Float, threads: Int, gains: Tensor?,
                              rowsPerGain: Int) -> (x: Tensor, mean: [Float], inverse: [Float]) {
        precondition(x.shape == dy.shape, "backward: input \(x.shape) and gradient \(dy.shape) differ")
        let width = x.dim(-1), count = x.count / max(1, width)
        var mean = [Float](repeating: 0, count: count), inverse = mean
        let gainData = gains?.data ?? []
        let dx = Tensor(shape: x.shape) { po in
            x.data.withUnsafeBufferPointer { px in dy.data.withUnsafeBufferPointer { pg in gainData.withUnsafeBufferPointer { pw in
            mean.withUnsafeMutableBufferPointer { pm in inverse.withUnsafeMutableBufferPointer { pi in
                parallelRanges(count, threads: threads, minimumPerThread: max(1, 16384 / max(1, width))) { range in
                    let (x, dy, out, means, inverses) = (px.baseAddress!, pg.baseAddress!, po.baseAddress!, pm.baseAddress!, pi.baseAddress!)
                    for r in range {
                        let gain = gains == nil ? nil : pw.baseAddress! + (r / rowsPerGain) * width
                        sd3k_layer_norm_grad_row(x + r * width, dy + r * width, gain, out + r * width, width, eps, means + r, inverses + r)
                    }
                }
            }}}}}
        }
        return (dx, mean, inverse)
    }

    /// y = x·r·w over the last axis, r = 1/sqrt(mean(x²) + eps) (diffusers RMSNorm) → dx = r·(g − x̂·mean(g·x̂)),
    /// g = dy·w, x̂ = x·r.
    public static func rmsNorm(_ x: Tensor, _ dy: Tensor, weight: Tensor?, eps: Float, threads: Int = 1) -> Tensor {
        rows(x, dy, threads: threads) { xs, gs, out, width in
            var squares = 0.0
            for i in 0..<width { squares += Double(xs[i]) * Double(xs[i]) }
            let r = 1 / (squares / Double(width) + Double(eps)).squareRoot()
            var gx = 0.0
            for i in 0..<width { gx += Double(gs[i]) * Double(weight?.data[i] ?? 1) * Double(xs[i]) * r }
            let gxMean = gx / Double(width)
            for i in 0..<width {
                let g = Double(gs[i]) * Double(weight?.data[i] ?? 1)
                out[i] = Float(r * (g - Double(xs[i]) * r * gxMean))
            }
        }
    }

    /// y = x/2·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³) →
    /// dy/dx = (1 + t)/2 + x/2·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²).
    public static func geluTanh(_ x: Tensor, _ dy: Tensor, threads: Int = 1) -> Tensor {
        precondition(x.shape == dy.shape, "backward: input \(x.shape) and gradient \(dy.shape) differ")
        return Tensor(shape: x.shape) { out in
            x.data.withUnsafeBufferPointer { px in
                dy.data.withUnsafeBufferPointer { pg in
                    parallelRanges(x.count, threads: threads) { range in
                        sd3k_gelu_tanh_grad(px.baseAddress! + range.lowerBound, pg.baseAddress! + range.lowerBound,
                                            out.baseAddress! + range.lowerBound, range.count)
                    }
                }
            }
        }
    }

    /// y = x·σ(x) → dy/dx = σ(x)·(1 + x·(1 − σ(x))).
    public static func silu(_ x: Tensor, _ dy: Tensor, threads: Int = 1) -> Tensor {
        elementwise(x, dy, threads: threads) { v, g in
            let s = 1 / (1 + exp(-Double(v)))
            return Float(Double(g) * s * (1 + Double(v) * (1 - s)))
        }
    }

    /// y = x·(1 + scale) + shift, x [B, N, D], shift and scale [B, D] broadcast over N →
    /// (dx = dy·(1 + scale), dshift = Σₙ dy, dscale = Σₙ dy·x).
    public static func modulate(_ x: Tensor, _ dy: Tensor, scale: Tensor) -> (x: Tensor, shift: Tensor, scale: Tensor) {
        let (batch, tokens, width) = (x.dim(0), x.dim(1), x.dim(2))
        precondition(dy.shape == x.shape && scale.shape == [batch, width], "modulate backward: shapes \(x.shape), \(dy.shape), \(scale.shape)")
        var dx = [Float](repeating: 0, count: x.count)
        var dShift = [Double](repeating: 0, count: batch * width), dScale = [Double](repeating: 0, count: batch * width)
        for b in 0..<batch {
            for n in 0..<tokens {
                let row = (b * tokens + n) * width
                for i in 0..<width {
                    let g = dy.data[row + i]
                    dx[row + i] = g * (1 + scale.data[b * width + i])
                    dShift[b * width + i] += Double(g)
                    dScale[b * width + i] += Double(g) * Double(x.data[row + i])
                }
            }
        }
        return (Tensor(shape: x.shape, data: dx), Tensor(shape: [batch, width], data: dShift.map(Float.init)),
                Tensor(shape: [batch, width], data: dScale.map(Float.init)))
    }

    /// out = x + gate·y, x and y [B, N, D], gate [B, D] → (dx = dout, dy = dout·gate, dgate = Σₙ dout·y).
    public static func gatedAdd(_ dOut: Tensor, y: Tensor, gate: Tensor, threads: Int = 1) -> (y: Tensor, gate: Tensor) {
        let (batch, tokens, width) = (y.dim(0), y.dim(1), y.dim(2))
        precondition(dOut.shape == y.shape && gate.shape == [batch, width], "gatedAdd backward: shapes \(dOut.shape), \(y.shape), \(gate.shape)")
        let dy = Tensor(shape: y.shape) { out in
            dOut.data.withUnsafeBufferPointer { pg in gate.data.withUnsafeBufferPointer { pgate in
                parallelRanges(batch * tokens, threads: threads, minimumPerThread: max(1, 16384 / max(1, width))) { rows in
                    for r in rows {
                        let (g, o, w) = (pg.baseAddress! + r * width, out.baseAddress! + r * width, pgate.baseAddress! + (r / tokens) * width)
                        for i in 0..<width { o[i] = g[i] * w[i] }
                    }
                }
            }}
        }
        let dGate = columnSums(batch: batch, tokens: tokens, width: width, threads: threads) { b, n, i in
            Double(dOut.data[(b * tokens + n) * width + i]) * Double(y.data[(b * tokens + n) * width + i])
        }
        return (dy, dGate)
    }

    /// [B, D]: Σₙ term(b, n, i) over each batch's tokens, in Double, each column's sum in one thread in token order.
    static func columnSums(batch: Int, tokens: Int, width: Int, threads: Int, _ term: (Int, Int, Int) -> Double) -> Tensor {
        var sums = [Double](repeating: 0, count: batch * width)
        sums.withUnsafeMutableBufferPointer { ps in
            parallelRanges(width, threads: threads, minimumPerThread: max(16, 16384 / max(1, batch * tokens))) { columns in
                for b in 0..<batch {
                    let row = ps.baseAddress! + b * width
                    for n in 0..<tokens {
                        for i in columns { row[i] += term(b, n, i) }
                    }
                }
            }
        }
        return Tensor(shape: [batch, width], data: sums.map(Float.init))
    }

    /// LN(x)·(1 + scale) + shift (AdaLayerNorm's modulated norm, no affine, eps 1e-6 in the MMDiT) →
    /// (dx, dshift, dscale). x [B, N, D], shift and scale [B, D].
    public static func normModulate(_ x: Tensor, _ dy: Tensor, scale: Tensor, eps: Float,
                                    threads: Int = 1) -> (x: Tensor, shift: Tensor, scale: Tensor) {
        let (batch, tokens, width) = (x.dim(0), x.dim(1), x.dim(2))
        precondition(dy.shape == x.shape && scale.shape == [batch, width], "normModulate backward: shapes \(x.shape), \(dy.shape), \(scale.shape)")
        let gains = Tensor(shape: [batch, width], data: scale.data.map { 1 + $0 })
        // dL/dx through LN with g = dy·(1 + scale); the shift's and scale's gradients are Σₙ dy and Σₙ dy·x̂.
        let rows = layerNormRows(x, dy, eps: eps, threads: threads, gains: gains, rowsPerGain: max(1, tokens))
        let dShift = columnSums(batch: batch, tokens: tokens, width: width, threads: threads) { b, n, i in
            Double(dy.data[(b * tokens + n) * width + i])
        }
        let dScale = columnSums(batch: batch, tokens: tokens, width: width, threads: threads) { b, n, i in
            let r = b * tokens + n
            return Double(dy.data[r * width + i]) * Double((x.data[r * width + i] - rows.mean[r]) * rows.inverse[r])
        }
        return (rows.x, dShift, dScale)
    }

    /// `body(x row, dy row, out row, width)` over the rows of the last axis, rows split across threads.
    static func rows(_ x: Tensor, _ dy: Tensor, threads: Int,
                     _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>, Int) -> Void) -> Tensor {
        precondition(x.shape == dy.shape, "backward: input \(x.shape) and gradient \(dy.shape) differ")
        let width = x.dim(-1), count = x.count / max(1, width)
        return Tensor(shape: x.shape) { po in
            x.data.withUnsafeBufferPointer { px in
                dy.data.withUnsafeBufferPointer { pg in
                    parallelRanges(count, threads: threads, minimumPerThread: max(1, 16384 / max(1, width))) { range in
                        for r in range {
                            body(UnsafeBufferPointer(rebasing: px[r * width..<(r + 1) * width]),
                                 UnsafeBufferPointer(rebasing: pg[r * width..<(r + 1) * width]),
                                 UnsafeMutableBufferPointer(rebasing: po[r * width..<(r + 1) * width]), width)
                        }
                    }
                }
            }
        }
    }

    static func elementwise(_ x: Tensor, _ dy: Tensor, threads: Int, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(x.shape == dy.shape, "backward: input \(x.shape) and gradient \(dy.shape) differ")
        return Tensor(shape: x.shape) { out in
            x.data.withUnsafeBufferPointer { px in
                dy.data.withUnsafeBufferPointer { pg in
                    parallelRanges(x.count, threads: threads) { range in
                        for i in range { out[i] = f(px[i], pg[i]) }
                    }
                }
            }
        }
    }
}
