import Kernels

/// What is added to the attention scores before the softmax.
public enum AttentionMask: Sendable {
    /// Query i sees keys 0…i (CLIP's causal mask); needs as many queries as keys.
    case causal
    /// An additive bias [H, Nq, Nk] shared by the batch, or [B, H, Nq, Nk] (T5's position bias).
    case bias(Tensor)
}

extension Compute {
    /// Scaled dot-product attention (F.scaled_dot_product_attention) on head-interleaved tensors:
    /// q [B, Nq, H·d], k and v [B, Nk, H·d] → [B, Nq, H·d]; head h uses columns h·d..<(h+1)·d.
    /// Without a mask: flash-style blocks (Kernels' sd3k_attention_*), a block of queries against a block of keys with
    /// a running maximum and sum, so no Nq × Nk matrix exists; `operands: .bf16` multiplies bf16-rounded operands with
    /// fp32 accumulation where the CPU has bf16 dot products (else fp32). With a mask: scores are made `chunk` queries
    /// at a time (memory O(chunk · Nk)), in fp32. `scale` defaults to 1/√d; T5 passes 1.
    public func attention(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int, scale: Float? = nil,
                          mask: AttentionMask? = nil, operands: OperandType = .fp32, scoreBudget: Int = 1 << 22) -> Tensor {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "attention: expected [B, N, H·d] tensors, got \(q.shape), \(k.shape), \(v.shape)")
        let (batch, queries, width) = (q.dim(0), q.dim(1), q.dim(2))
        let keys = k.dim(1)
        precondition(k.shape == [batch, keys, width] && v.shape == [batch, keys, width],
                     "attention: key \(k.shape) and value \(v.shape) do not match query \(q.shape)")
        precondition(heads > 0 && width % heads == 0, "attention: width \(width) does not split into \(heads) heads")
        let headSize = width / heads
        let alpha = scale ?? 1 / Float(headSize).squareRoot()
        switch mask {
        case .causal?: precondition(queries == keys, "attention: a causal mask needs as many queries (\(queries)) as keys (\(keys))")
        case .bias(let b)?:
            precondition(b.shape == [heads, queries, keys] || b.shape == [batch, heads, queries, keys],
                         "attention: bias \(b.shape) is not [\(heads), \(queries), \(keys)] or [\(batch), \(heads), \(queries), \(keys)]")
        case nil: break
        }
        if batch * queries * width == 0 || keys == 0 { return Tensor(zeros: [batch, queries, width]) }
        if mask == nil { return flashAttention(q, k, v, heads: heads, scale: alpha, bf16: operands == .bf16) }
        let chunk = max(1, min(queries, scoreBudget / max(1, keys)))
        var scores = [Float](repeating: 0, count: chunk * keys)
        var out = Tensor(zeros: [batch, queries, width])
        q.data.withUnsafeBufferPointer { pq in
        k.data.withUnsafeBufferPointer { pk in
        v.data.withUnsafeBufferPointer { pv in
        out.data.withUnsafeMutableBufferPointer { po in
        scores.withUnsafeMutableBufferPointer { ps in
            for b in 0..<batch {
                for h in 0..<heads {
                    let column = h * headSize
                    let keyBase = pk.baseAddress! + b * keys * width + column
                    let valueBase = pv.baseAddress! + b * keys * width + column
                    for start in stride(from: 0, to: queries, by: chunk) {
                        let rows = min(chunk, queries - start)
                        // scores[rows, Nk] = alpha · Q[start..<start+rows, head] · K[:, head]ᵀ
                        let qk = GemmDescriptor(m: rows, n: keys, k: headSize, transposeB: true,
                                                lda: width, ldb: width, ldc: keys, alpha: alpha)
                        backend.gemm(qk, a: pq.baseAddress! + (b * queries + start) * width + column, b: keyBase,
                                     bias: nil, c: ps.baseAddress!)
                        addMask(mask, to: ps.baseAddress!, batch: b, head: h, heads: heads, firstQuery: start,
                                rows: rows, queries: queries, keys: keys)
                        let scoresPointer = UncheckedSendable(ps.baseAddress!)
                        parallelRanges(rows, threads: threads, minimumPerThread: max(1, 8192 / keys)) { range in
                            for r in range {
                                let row = scoresPointer.value + r * keys
                                sd3k_softmax_row(row, row, keys)
                            }
                        }
                        // O[start..<start+rows, head] = P[rows, Nk] · V[:, head]
                        let pv = GemmDescriptor(m: rows, n: headSize, k: keys, transposeB: false,
                                                lda: keys, ldb: width, ldc: width)
                        backend.gemm(pv, a: ps.baseAddress!, b: valueBase, bias: nil,
                                     c: po.baseAddress! + (b * queries + start) * width + column)
                    }
                }
            }
        }}}}}
        return out
    }

    /// The mask-free attention of `attention` (scale 1/√d) that also returns each query row's logsumexp of its scaled
    /// scores, [B, H, Nq] (what a backward needs to remake the probabilities). `block`: queries per task (0: the
    /// kernel's own, 60 or 64; more is capped to it).
    public func attentionWithLogsumexp(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int, operands: OperandType = .fp32,
                                       block: Int = 0) -> (output: Tensor, logsumexp: [Float]) {
        let (batch, queries, width, keys) = (q.dim(0), q.dim(1), q.dim(2), k.dim(1))
        precondition(q.rank == 3 && k.shape == [batch, keys, width] && v.shape == k.shape && heads > 0 && width % heads == 0,
                     "attentionWithLogsumexp: q \(q.shape), k \(k.shape), v \(v.shape), \(heads) heads")
        var lse = [Float](repeating: 0, count: batch * heads * queries)
        if batch * queries * width == 0 || keys == 0 { return (Tensor(zeros: q.shape), lse) }
        let out = lse.withUnsafeMutableBufferPointer { l in
            flashAttention(q, k, v, heads: heads, scale: 1 / Float(width / heads).squareRoot(), bf16: operands == .bf16,
                           logsumexp: l.baseAddress, block: block)
        }
        return (out, lse)
    }

    private func flashAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, scale: Float, bf16: Bool,
                                logsumexp: UnsafeMutablePointer<Float>? = nil, block: Int = 0) -> Tensor {
        let (batch, queries, width, keys) = (q.dim(0), q.dim(1), q.dim(2), k.dim(1))
        return Tensor(shape: [batch, queries, width]) { out in
            q.data.withUnsafeBufferPointer { pq in
            k.data.withUnsafeBufferPointer { pk in
            v.data.withUnsafeBufferPointer { pv in
                var job = sd3k_attention_t(q: pq.baseAddress, k: pk.baseAddress, v: pv.baseAddress, out: out.baseAddress,
                                           batch: batch, queries: queries, keys: keys, heads: heads, head_size: width / heads,
                                           ldq: width, ldk: width, ldv: width, ldo: width, scale: scale, bf16: bf16 ? 1 : 0,
                                           level: 0, packed: nil, lse: logsumexp, block: block)
                sd3k_attention_prepare(&job)
                let packed = UnsafeMutableRawPointer.allocate(byteCount: sd3k_attention_packed_bytes(&job), alignment: 64)
                defer { packed.deallocate() }
                job.packed = packed
                let shared = UncheckedSendable(job)
                parallelRanges(batch * heads, threads: threads, minimumPerThread: 1) { units in
                    let status = withUnsafePointer(to: shared.value) { sd3k_attention_pack($0, units.lowerBound, units.upperBound) }
                    precondition(status == 0, "attention: out of memory while packing keys and values")
                }
                parallelRanges(sd3k_attention_tasks(&job), threads: threads, minimumPerThread: 1) { tasks in
                    let status = withUnsafePointer(to: shared.value) { sd3k_attention_run($0, tasks.lowerBound, tasks.upperBound) }
                    precondition(status == 0, "attention: out of memory for a block's scratch")
                }
            }}}
        }
    }

    private func addMask(_ mask: AttentionMask?, to scores: UnsafeMutablePointer<Float>, batch b: Int, head h: Int,
                         heads: Int, firstQuery: Int, rows: Int, queries: Int, keys: Int) {
        switch mask {
        case nil:
            return
        case .causal?:
            for r in 0..<rows {
                let query = firstQuery + r
                if query + 1 < keys { (scores + r * keys + query + 1).update(repeating: -.infinity, count: keys - query - 1) }
            }
        case .bias(let bias)?:
            let plane = bias.rank == 4 ? (b * heads + h) : h
            bias.data.withUnsafeBufferPointer { pb in
                let source = pb.baseAddress! + (plane * queries + firstQuery) * keys
                for i in 0..<rows * keys { scores[i] += source[i] }
            }
        }
    }
}
