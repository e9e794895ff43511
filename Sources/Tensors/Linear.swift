extension Compute {
    /// y = x·Wᵀ + b (torch.nn.functional.linear). x: [..., in], W: [out, in], b: [out] → [..., out].
    public func linear(_ x: Tensor, _ weight: Weight, bias: Tensor? = nil) -> Tensor {
        precondition(weight.shape.count == 2, "linear: weight must be [out, in], got \(weight.shape)")
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        precondition(x.rank >= 1 && x.dim(-1) == inFeatures, "linear: input \(x.shape) does not end in \(inFeatures)")
        if let bias { precondition(bias.shape == [outFeatures], "linear: bias \(bias.shape) is not [\(outFeatures)]") }
        let rows = x.count / inFeatures
        let shape = Array(x.shape.dropLast()) + [outFeatures]
        if rows == 0 { return Tensor(zeros: shape) }
        let d = GemmDescriptor(m: rows, n: outFeatures, k: inFeatures, transposeB: true,
                               hasBias: bias != nil, operandType: weight.precision.operandType)
        return Tensor(shape: shape) { out in
            withOperands(x, weight, bias: bias) { a, b, bias in backend.gemm(d, a: a, b: b, bias: bias, c: out.baseAddress!) }
        }
    }

    /// Batched product (torch.bmm): a [B, M, K] · b [B, K, N] → [B, M, N];
    /// with `transposeB`, b is [B, N, K] and the product is a · bᵀ. fp32 operands.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeB: Bool = false) -> Tensor {
        precondition(a.rank == 3 && b.rank == 3 && a.dim(0) == b.dim(0), "matmul: expected [B, M, K] and [B, K, N], got \(a.shape) and \(b.shape)")
        let (batch, m, k) = (a.dim(0), a.dim(1), a.dim(2))
        let n = transposeB ? b.dim(1) : b.dim(2)
        precondition((transposeB ? b.dim(2) : b.dim(1)) == k, "matmul: inner sizes differ in \(a.shape) and \(b.shape)\(transposeB ? " (b transposed)" : "")")
        if batch * m * n == 0 { return Tensor(zeros: [batch, m, n]) }
        if k == 0 { return Tensor(zeros: [batch, m, n]) }
        let d = GemmDescriptor(m: m, n: n, k: k, transposeB: transposeB)
        return Tensor(shape: [batch, m, n]) { out in
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    for i in 0..<batch {
                        backend.gemm(d, a: UnsafeRawPointer(pa.baseAddress! + i * m * k),
                                     b: UnsafeRawPointer(pb.baseAddress! + i * n * k),
                                     bias: nil, c: out.baseAddress! + i * m * n)
                    }
                }
            }
        }
    }
}
