import Kernels
import Tensors

/// Attention for training: softmax(α·Q·Kᵀ)·V per head on head-interleaved tensors (q [B, Nq, H·d], k and v
/// [B, Nk, H·d]; head h uses columns h·d..<(h+1)·d), α = 1/√d, on the Kernels flash attention: a block of query rows
/// against a block of keys at a time, never Nq × Nk. The forward keeps each query row's logsumexp [B, H, Nq]; the
/// backward (sd3k_attention_backward_run) remakes a block's probabilities from it (the FlashAttention-2 backward:
/// dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(dO∘O)), dQ = α·dS·K, dK += α·dSᵀ·Q). Both run (batch, head) units
/// in parallel on the engine's threads. `operands: .bf16` (a bf16 base) multiplies bf16-rounded operands with fp32
/// accumulation where the CPU has bf16 dot products, as the inference attention and torch's bf16 attention do.
extension Compute {
    /// `block`: query rows per task (capped at the kernel's 60 or 64).
    public func attentionForward(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int, operands: OperandType = .fp32,
                                 block: Int = 64) -> (output: Tensor, logsumexp: [Float]) {
        let (batch, width, keys) = (q.dim(0), q.dim(2), k.dim(1))
        precondition(k.shape == [batch, keys, width] && v.shape == k.shape && width % heads == 0,
                     "attentionForward: q \(q.shape), k \(k.shape), v \(v.shape), \(heads) heads")
        return attentionWithLogsumexp(query: q, key: k, value: v, heads: heads, operands: operands, block: block)
    }

    /// dL/dq, dL/dk, dL/dv from dL/d(output), the forward's inputs, output and logsumexp (made with the same
    /// `operands`). `block`: query rows per block (1…256).
    public func attentionBackward(query q: Tensor, key k: Tensor, value v: Tensor, output o: Tensor, logsumexp lse: [Float],
                                  gradient dO: Tensor, heads: Int, operands: OperandType = .fp32,
                                  block: Int = 64) -> (q: Tensor, k: Tensor, v: Tensor) {
        let (batch, queries, width, keys) = (q.dim(0), q.dim(1), q.dim(2), k.dim(1))
        precondition(k.shape == [batch, keys, width] && v.shape == k.shape && width % heads == 0,
                     "attentionBackward: q \(q.shape), k \(k.shape), v \(v.shape), \(heads) heads")
        precondition(o.shape == q.shape && dO.shape == q.shape && lse.count == batch * heads * queries,
                     "attentionBackward: output \(o.shape), gradient \(dO.shape), \(lse.count) logsumexps for q \(q.shape)")
        var dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
        guard batch * queries * width > 0, keys > 0 else { return (dq, dk, dv) }
        q.data.withUnsafeBufferPointer { pq in k.data.withUnsafeBufferPointer { pk in v.data.withUnsafeBufferPointer { pv in
        o.data.withUnsafeBufferPointer { po in dO.data.withUnsafeBufferPointer { pg in lse.withUnsafeBufferPointer { pl in
        dq.data.withUnsafeMutableBufferPointer { dQ in dk.data.withUnsafeMutableBufferPointer { dK in dv.data.withUnsafeMutableBufferPointer { dV in
            var job = sd3k_attention_backward_t(q: pq.baseAddress, k: pk.baseAddress, v: pv.baseAddress, out: po.baseAddress,
                                                dout: pg.baseAddress, lse: pl.baseAddress, dq: dQ.baseAddress, dk: dK.baseAddress,
                                                dv: dV.baseAddress, batch: batch, queries: queries, keys: keys, heads: heads,
                                                head_size: width / heads, ldq: width, ldk: width,
                                                scale: 1 / Float(width / heads).squareRoot(), bf16: operands == .bf16 ? 1 : 0,
                                                level: 0, block: block)
            sd3k_attention_backward_prepare(&job)
            let prepared = job
            parallelRanges(batch * heads, threads: threads, minimumPerThread: 1) { units in
                let status = withUnsafePointer(to: prepared) { sd3k_attention_backward_run($0, units.lowerBound, units.upperBound) }
                precondition(status == 0, "attentionBackward: out of memory for a unit's scratch")
            }
        }}}}}}}}}
        return (dq, dk, dv)
    }
}
