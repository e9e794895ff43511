import Foundation
import Tensors

/// Attention for training: softmax(α·Q·Kᵀ)·V per head on head-interleaved tensors (q [B, Nq, H·d], k and v
/// [B, Nk, H·d]; head h uses columns h·d..<(h+1)·d), a block of query rows of one head at a time: the scores of a
/// block are [rows, Nk], never Nq × Nk for all heads. The forward keeps each query row's logsumexp [B, H, Nq]; the
/// backward recomputes a block's probabilities from it (the FlashAttention-2 backward: dV += Pᵀ·dO, dP = dO·Vᵀ,
/// dS = P∘(dP − rowsum(dO∘O)), dQ = α·dS·K, dK += α·dSᵀ·Q).
extension Compute {
    public func attentionForward(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int,
                                 block: Int = 64) -> (output: Tensor, logsumexp: [Float]) {
        let (batch, queries, width, keys) = (q.dim(0), q.dim(1), q.dim(2), k.dim(1))
        precondition(k.shape == [batch, keys, width] && v.shape == k.shape && width % heads == 0,
                     "attentionForward: q \(q.shape), k \(k.shape), v \(v.shape), \(heads) heads")
        let d = width / heads, alpha = 1 / Float(d).squareRoot()
        var out = [Float](repeating: 0, count: q.count)
        var lse = [Float](repeating: 0, count: batch * heads * queries)
        var scores = [Float](repeating: 0, count: min(block, queries) * keys)
        q.data.withUnsafeBufferPointer { pq in k.data.withUnsafeBufferPointer { pk in v.data.withUnsafeBufferPointer { pv in
        out.withUnsafeMutableBufferPointer { po in scores.withUnsafeMutableBufferPointer { ps in
            for b in 0..<batch {
                for h in 0..<heads {
                    let (kh, vh) = (pk.baseAddress! + b * keys * width + h * d, pv.baseAddress! + b * keys * width + h * d)
                    for start in stride(from: 0, to: queries, by: block) {
                        let rows = min(block, queries - start)
                        let offset = (b * queries + start) * width + h * d
                        gemm(m: rows, n: keys, k: d, pq.baseAddress! + offset, lda: width, kh, ldb: width, transposeB: true,
                             into: ps.baseAddress!, alpha: alpha)
                        for r in 0..<rows {
                            let row = ps.baseAddress! + r * keys
                            var top = -Float.infinity
                            for j in 0..<keys { top = max(top, row[j]) }
                            var sum = 0.0
                            for j in 0..<keys { row[j] = Foundation.exp(row[j] - top); sum += Double(row[j]) }
                            let inverse = Float(1 / sum)
                            for j in 0..<keys { row[j] *= inverse }
                            lse[(b * heads + h) * queries + start + r] = top + Float(Foundation.log(sum))
                        }
                        gemm(m: rows, n: d, k: keys, ps.baseAddress!, lda: keys, vh, ldb: width, transposeB: false,
                             into: po.baseAddress! + offset, ldc: width)
                    }
                }
            }
        }}}}}
        return (Tensor(shape: q.shape, data: out), lse)
    }

    /// dL/dq, dL/dk, dL/dv from dL/d(output), the forward's inputs, output and logsumexp.
    public func attentionBackward(query q: Tensor, key k: Tensor, value v: Tensor, output o: Tensor, logsumexp lse: [Float],
                                  gradient dO: Tensor, heads: Int, block: Int = 64) -> (q: Tensor, k: Tensor, v: Tensor) {
        let (batch, queries, width, keys) = (q.dim(0), q.dim(1), q.dim(2), k.dim(1))
        precondition(o.shape == q.shape && dO.shape == q.shape && lse.count == batch * heads * queries,
                     "attentionBackward: output \(o.shape), gradient \(dO.shape), \(lse.count) logsumexps for q \(q.shape)")
        let d = width / heads, alpha = 1 / Float(d).squareRoot()
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = [Float](repeating: 0, count: v.count)
        let rowsMax = min(block, queries)
        var p = [Float](repeating: 0, count: rowsMax * keys), dp = p, transposedBuffer = p
        q.data.withUnsafeBufferPointer { pq in k.data.withUnsafeBufferPointer { pk in v.data.withUnsafeBufferPointer { pv in
        dO.data.withUnsafeBufferPointer { pg in o.data.withUnsafeBufferPointer { pout in
        dq.withUnsafeMutableBufferPointer { dQ in dk.withUnsafeMutableBufferPointer { dK in dv.withUnsafeMutableBufferPointer { dV in
        p.withUnsafeMutableBufferPointer { P in dp.withUnsafeMutableBufferPointer { dP in transposedBuffer.withUnsafeMutableBufferPointer { T in
            for b in 0..<batch {
                for h in 0..<heads {
                    let headOffset = b * keys * width + h * d
                    let (kh, vh) = (pk.baseAddress! + headOffset, pv.baseAddress! + headOffset)
                    for start in stride(from: 0, to: queries, by: block) {
                        let rows = min(block, queries - start)
                        let offset = (b * queries + start) * width + h * d
                        // P = exp(α·Q·Kᵀ − lse) [rows, Nk].
                        gemm(m: rows, n: keys, k: d, pq.baseAddress! + offset, lda: width, kh, ldb: width, transposeB: true,
                             into: P.baseAddress!, alpha: alpha)
                        for r in 0..<rows {
                            let l = lse[(b * heads + h) * queries + start + r]
                            for j in 0..<keys { P[r * keys + j] = Foundation.exp(P[r * keys + j] - l) }
                        }
                        // dV += Pᵀ·dO.
                        transpose(P.baseAddress!, rows: rows, columns: keys, into: T.baseAddress!)
                        gemm(m: keys, n: d, k: rows, T.baseAddress!, lda: rows, pg.baseAddress! + offset, ldb: width, transposeB: false,
                             into: dV.baseAddress! + headOffset, ldc: width, accumulate: true)
                        // dP = dO·Vᵀ; dS = P∘(dP − D), D = rowsum(dO∘O).
                        gemm(m: rows, n: keys, k: d, pg.baseAddress! + offset, lda: width, vh, ldb: width, transposeB: true,
                             into: dP.baseAddress!)
                        for r in 0..<rows {
                            var D = 0.0
                            for c in 0..<d { D += Double(pg[offset + r * width + c]) * Double(pout[offset + r * width + c]) }
                            let delta = Float(D)
                            for j in 0..<keys { dP[r * keys + j] = P[r * keys + j] * (dP[r * keys + j] - delta) }
                        }
                        // dQ = α·dS·K; dK += α·dSᵀ·Q.
                        gemm(m: rows, n: d, k: keys, dP.baseAddress!, lda: keys, kh, ldb: width, transposeB: false,
                             into: dQ.baseAddress! + offset, ldc: width, alpha: alpha)
                        transpose(dP.baseAddress!, rows: rows, columns: keys, into: T.baseAddress!)
                        gemm(m: keys, n: d, k: rows, T.baseAddress!, lda: rows, pq.baseAddress! + offset, ldb: width, transposeB: false,
                             into: dK.baseAddress! + headOffset, ldc: width, alpha: alpha, accumulate: true)
                    }
                }
            }
        }}}}}}}}}}}
        return (Tensor(shape: q.shape, data: dq), Tensor(shape: k.shape, data: dk), Tensor(shape: v.shape, data: dv))
    }
}

/// a [rows, columns] → t [columns, rows].
private func transpose(_ a: UnsafePointer<Float>, rows: Int, columns: Int, into t: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        for c in 0..<columns { t[c * rows + r] = a[r * columns + c] }
    }
}
