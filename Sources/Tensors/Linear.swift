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
        if weight.format == .int8 { return int8Linear(x, weight, bias: bias, rows: rows, shape: shape) }
        let d = GemmDescriptor(m: rows, n: outFeatures, k: inFeatures, transposeB: true,
                               hasBias: bias != nil, operandType: weight.precision.operandType)
        return Tensor(shape: shape) { out in
            x.data.withUnsafeBufferPointer { xs in
                withOperand(xs, as: d.operandType) { a in
                    withOptionalPointer(bias) { bias in backend.linear(d, a: a, weight: weight, bias: bias, c: out.baseAddress!) }
                }
            }
        }
    }

    /// An int8 weight, a tile of output rows at a time: the tile is dequantized into fp32 scratch and
    /// multiplied into its columns of y, so no full fp32 copy of the weight ever exists.
    private func int8Linear(_ x: Tensor, _ weight: Weight, bias: Tensor?, rows: Int, shape: [Int]) -> Tensor {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        let tile = min(outFeatures, max(64, (1 << 21) / inFeatures))  // ≤ 8 MB of fp32 per tile
        var scratch = [Float](repeating: 0, count: tile * inFeatures)
        return Tensor(shape: shape) { out in
            x.data.withUnsafeBufferPointer { a in
                scratch.withUnsafeMutableBufferPointer { b in
                    for start in stride(from: 0, to: outFeatures, by: tile) {
                        let count = min(tile, outFeatures - start)
                        weight.dequantize(rows: start..<start + count, into: b.baseAddress!, threads: threads)
                        let d = GemmDescriptor(m: rows, n: count, k: inFeatures, transposeB: true, ldc: outFeatures,
                                               hasBias: bias != nil)
                        let c = out.baseAddress! + start
                        if let bias {
                            bias.data.withUnsafeBufferPointer { backend.gemm(d, a: a.baseAddress!, b: b.baseAddress!, bias: $0.baseAddress! + start, c: c) }
                        } else {
                            backend.gemm(d, a: a.baseAddress!, b: b.baseAddress!, bias: nil, c: c)
                        }
                    }
                }
            }
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
