import Foundation
import Tensors

/// Backward of the MMDiT's elementwise and row-wise ops, in fp32 with Double row sums. Each takes the op's forward
/// input (recomputing what it needs) and dL/d(output), and returns dL/d(input) (and of the other operands). Row-wise
/// and elementwise loops split across `threads` (Tensors' OpenMP pool, as the forward ops).
public enum OpGradients {
    /// y = (x − μ)/σ·w + b over the last axis (σ = sqrt(var + eps), biased variance; w, b optional) →
    /// dx = (g − mean(g) − x̂·mean(g·x̂))/σ with g = dy·w, x̂ = (x − μ)/σ.
    public static func layerNorm(_ x: Tensor, _ dy: Tensor, weight: Tensor? = nil, eps: Float, threads: Int = 1) -> Tensor {
        rows(x, dy, threads: threads) { xs, gs, out, width in
            let (mean, inverse) = statistics(xs, width, eps: eps)
            var gSum = 0.0, gxSum = 0.0
            for i in 0..<width {
                let g = Double(gs[i]) * Double(weight?.data[i] ?? 1)
                gSum += g
                gxSum += g * (Double(xs[i]) - mean) * inverse
            }
            let (gMean, gxMean) = (gSum / Double(width), gxSum / Double(width))
            for i in 0..<width {
                let g = Double(gs[i]) * Double(weight?.data[i] ?? 1)
                out[i] = Float((g - gMean - (Double(xs[i]) - mean) * inverse * gxMean) * inverse)
            }
        }
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
        elementwise(x, dy, threads: threads) { v, g in
            let c = 0.7978845608028654, a = 0.044715, x = Double(v)
            let t = tanh(c * (x + a * x * x * x))
            return Float(Double(g) * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x)))
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
    public static func gatedAdd(_ dOut: Tensor, y: Tensor, gate: Tensor) -> (y: Tensor, gate: Tensor) {
        let (batch, tokens, width) = (y.dim(0), y.dim(1), y.dim(2))
        precondition(dOut.shape == y.shape && gate.shape == [batch, width], "gatedAdd backward: shapes \(dOut.shape), \(y.shape), \(gate.shape)")
        var dy = [Float](repeating: 0, count: y.count)
        var dGate = [Double](repeating: 0, count: batch * width)
        for b in 0..<batch {
            for n in 0..<tokens {
                let row = (b * tokens + n) * width
                for i in 0..<width {
                    let g = dOut.data[row + i]
                    dy[row + i] = g * gate.data[b * width + i]
                    dGate[b * width + i] += Double(g) * Double(y.data[row + i])
                }
            }
        }
        return (Tensor(shape: y.shape, data: dy), Tensor(shape: [batch, width], data: dGate.map(Float.init)))
    }

    /// LN(x)·(1 + scale) + shift (AdaLayerNorm's modulated norm, no affine, eps 1e-6 in the MMDiT) →
    /// (dx, dshift, dscale). x [B, N, D], shift and scale [B, D].
    public static func normModulate(_ x: Tensor, _ dy: Tensor, scale: Tensor, eps: Float,
                                    threads: Int = 1) -> (x: Tensor, shift: Tensor, scale: Tensor) {
        let normalized = normalize(x, eps: eps, threads: threads)
        let m = modulate(normalized, dy, scale: scale)
        return (layerNorm(x, m.x, eps: eps, threads: threads), m.shift, m.scale)
    }

    /// A row's mean and 1/sqrt(biased variance + eps), in Double.
    static func statistics(_ xs: UnsafeBufferPointer<Float>, _ width: Int, eps: Float) -> (mean: Double, inverse: Double) {
        var sum = 0.0
        for i in 0..<width { sum += Double(xs[i]) }
        let mean = sum / Double(width)
        var squares = 0.0
        for i in 0..<width { let c = Double(xs[i]) - mean; squares += c * c }
        return (mean, 1 / (squares / Double(width) + Double(eps)).squareRoot())
    }

    /// (x − μ)/sqrt(var + eps) over the last axis, with Double statistics.
    static func normalize(_ x: Tensor, eps: Float, threads: Int) -> Tensor {
        rows(x, x, threads: threads) { xs, _, out, width in
            let (mean, inverse) = statistics(xs, width, eps: eps)
            for i in 0..<width { out[i] = Float((Double(xs[i]) - mean) * inverse) }
        }
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
