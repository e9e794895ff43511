import Foundation
@testable import Tensors

/// Textbook implementations in Double, written independently of the engine's loops: the twins
/// each op is checked against.
enum Naive {
    static func linear(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
        let (outF, inF) = (w.shape[0], w.shape[1])
        let rows = x.count / inF
        var out = [Float](repeating: 0, count: rows * outF)
        for r in 0..<rows {
            for o in 0..<outF {
                var s = Double(b?.data[o] ?? 0)
                for i in 0..<inF { s += Double(x.data[r * inF + i]) * Double(w.data[o * inF + i]) }
                out[r * outF + o] = Float(s)
            }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [outF], data: out)
    }

    static func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) -> Tensor {
        let (batch, m, k) = (a.shape[0], a.shape[1], a.shape[2])
        let n = transposeB ? b.shape[1] : b.shape[2]
        var out = [Float](repeating: 0, count: batch * m * n)
        for p in 0..<batch {
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for t in 0..<k {
                        let bv = transposeB ? b.data[(p * n + j) * k + t] : b.data[(p * k + t) * n + j]
                        s += Double(a.data[(p * m + i) * k + t]) * Double(bv)
                    }
                    out[(p * m + i) * n + j] = Float(s)
                }
            }
        }
        return Tensor(shape: [batch, m, n], data: out)
    }

    static func normalize(_ values: [Double], eps: Double) -> [Double] {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        return values.map { ($0 - mean) / (variance + eps).squareRoot() }
    }

    static func layerNorm(_ x: Tensor, _ w: Tensor?, _ b: Tensor?, eps: Double) -> Tensor {
        let d = x.shape.last!
        var out = [Float]()
        for r in 0..<x.count / d {
            let n = normalize(x.data[r * d..<(r + 1) * d].map(Double.init), eps: eps)
            for i in 0..<d { out.append(Float(n[i] * Double(w?.data[i] ?? 1) + Double(b?.data[i] ?? 0))) }
        }
        return Tensor(shape: x.shape, data: out)
    }

    static func rmsNorm(_ x: Tensor, _ w: Tensor?, eps: Double) -> Tensor {
        let d = x.shape.last!
        var out = [Float]()
        for r in 0..<x.count / d {
            let row = x.data[r * d..<(r + 1) * d].map(Double.init)
            let rms = (row.map { $0 * $0 }.reduce(0, +) / Double(d) + eps).squareRoot()
            for i in 0..<d { out.append(Float(row[i] / rms * Double(w?.data[i] ?? 1))) }
        }
        return Tensor(shape: x.shape, data: out)
    }

    static func groupNorm(_ x: Tensor, groups: Int, _ w: Tensor?, _ b: Tensor?, eps: Double) -> Tensor {
        let (batch, channels) = (x.shape[0], x.shape[1])
        let positions = x.count / (batch * channels)
        let perGroup = channels / groups
        var out = [Float](repeating: 0, count: x.count)
        for n in 0..<batch {
            for g in 0..<groups {
                let start = (n * channels + g * perGroup) * positions
                let values = x.data[start..<start + perGroup * positions].map(Double.init)
                let normalized = normalize(values, eps: eps)
                for i in 0..<values.count {
                    let c = g * perGroup + i / positions
                    out[start + i] = Float(normalized[i] * Double(w?.data[c] ?? 1) + Double(b?.data[c] ?? 0))
                }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    static func map(_ x: Tensor, _ f: (Double) -> Double) -> Tensor {
        Tensor(shape: x.shape, data: x.data.map { Float(f(Double($0))) })
    }

    static func softmax(_ x: Tensor) -> Tensor {
        let d = x.shape.last!
        var out = [Float]()
        for r in 0..<x.count / d {
            let row = x.data[r * d..<(r + 1) * d].map(Double.init)
            let m = row.max()!
            let e = row.map { exp($0 - m) }
            let s = e.reduce(0, +)
            out += e.map { Float($0 / s) }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// Full-matrix attention, one query row at a time, on [B, N, H·d] tensors.
    static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, scale: Double?, causal: Bool,
                          bias: Tensor?, rows: [Int]? = nil) -> [Int: [Float]] {
        let (batch, nq, width) = (q.shape[0], q.shape[1], q.shape[2])
        let nk = k.shape[1]
        let d = width / heads
        let alpha = scale ?? 1 / Double(d).squareRoot()
        var result: [Int: [Float]] = [:]
        for b in 0..<batch {
            for i in rows ?? Array(0..<nq) {
                var outRow = [Float](repeating: 0, count: width)
                for h in 0..<heads {
                    var scores = [Double](repeating: 0, count: nk)
                    for j in 0..<nk {
                        var s = 0.0
                        for t in 0..<d { s += Double(q.data[(b * nq + i) * width + h * d + t]) * Double(k.data[(b * nk + j) * width + h * d + t]) }
                        s *= alpha
                        if let bias {
                            let plane = bias.rank == 4 ? b * heads + h : h
                            s += Double(bias.data[(plane * nq + i) * nk + j])
                        }
                        if causal && j > i { s = -.infinity }
                        scores[j] = s
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let total = e.reduce(0, +)
                    for t in 0..<d {
                        var s = 0.0
                        for j in 0..<nk { s += e[j] / total * Double(v.data[(b * nk + j) * width + h * d + t]) }
                        outRow[h * d + t] = Float(s)
                    }
                }
                result[b * nq + i] = outRow
            }
        }
        return result
    }

    static func conv2d(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, stride: Int, padding: Padding) -> Tensor {
        let (batch, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let oh = (h + padding.top + padding.bottom - kh) / stride + 1
        let ow = (wd + padding.left + padding.right - kw) / stride + 1
        var out = [Float](repeating: 0, count: batch * cout * oh * ow)
        for n in 0..<batch {
            for o in 0..<cout {
                for y in 0..<oh {
                    for xx in 0..<ow {
                        var s = Double(bias?.data[o] ?? 0)
                        for c in 0..<cin {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = y * stride + ky - padding.top, ix = xx * stride + kx - padding.left
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    s += Double(x.data[((n * cin + c) * h + iy) * wd + ix]) * Double(w.data[((o * cin + c) * kh + ky) * kw + kx])
                                }
                            }
                        }
                        out[((n * cout + o) * oh + y) * ow + xx] = Float(s)
                    }
                }
            }
        }
        return Tensor(shape: [batch, cout, oh, ow], data: out)
    }

    static func upsample(_ x: Tensor) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out = [Float](repeating: 0, count: b * c * 4 * h * w)
        for p in 0..<b * c {
            for y in 0..<2 * h {
                for xx in 0..<2 * w { out[(p * 2 * h + y) * 2 * w + xx] = x.data[(p * h + y / 2) * w + xx / 2] }
            }
        }
        return Tensor(shape: [b, c, 2 * h, 2 * w], data: out)
    }

    /// Element at a multi-index of a row-major tensor.
    static func element(_ t: Tensor, _ index: [Int]) -> Float {
        var offset = 0
        for (i, d) in zip(index, t.shape) { offset = offset * d + i }
        return t.data[offset]
    }

    static func permute(_ t: Tensor, _ axes: [Int]) -> Tensor {
        let outShape = axes.map { t.shape[$0] }
        var out = [Float]()
        var index = [Int](repeating: 0, count: axes.count)
        for _ in 0..<t.count {
            var source = [Int](repeating: 0, count: axes.count)
            for (o, a) in axes.enumerated() { source[a] = index[o] }
            out.append(element(t, source))
            var axis = axes.count - 1
            while axis >= 0 { index[axis] += 1; if index[axis] < outShape[axis] { break }; index[axis] = 0; axis -= 1 }
        }
        return Tensor(shape: outShape, data: out)
    }
}
