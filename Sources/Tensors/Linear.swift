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

    /// Several linear layers of the same input (attention's q, k, v): with bf16 weights x is rounded to bf16 once for
    /// all of them instead of once per product. Each layer is (weight, bias, run-time LoRA pairs).
    public func linears(_ x: Tensor, _ layers: [(Weight, Tensor?, [LowRankPair])]) -> [Tensor] {
        let inFeatures = x.dim(-1), rows = x.count / max(1, inFeatures)
        let types = Set(layers.map { $0.0.format })
        guard rows > 0, types.count == 1, types.first != .int8,
              layers.allSatisfy({ $0.0.shape.count == 2 && $0.0.shape[1] == inFeatures && ($0.1 == nil || $0.1!.shape == [$0.0.shape[0]]) })
        else { return layers.map { linear(x, $0.0, bias: $0.1, pairs: $0.2) } }
        let type = layers[0].0.precision.operandType
        var outputs = x.data.withUnsafeBufferPointer { xs in
            withOperand(xs, as: type) { a in
                layers.map { weight, bias, _ in
                    let d = GemmDescriptor(m: rows, n: weight.shape[0], k: inFeatures, transposeB: true, hasBias: bias != nil, operandType: type)
                    return Tensor(shape: Array(x.shape.dropLast()) + [weight.shape[0]]) { out in
                        withOptionalPointer(bias) { bias in backend.linear(d, a: a, weight: weight, bias: bias, c: out.baseAddress!) }
                    }
                }
            }
        }
        for (i, layer) in layers.enumerated() { addPairs(layer.2, of: x, to: &outputs[i]) }
        return outputs
    }

    /// A transformer's MLP, down(GELU_tanh(up(x))) (diffusers FeedForward with "gelu-approximate"), with the GELU
    /// fused into the first product and its output written straight in the second product's operand form (bf16 for
    /// bf16 weights), so the 4×-wide hidden layer is written once instead of three times. Where the backend cannot
    /// fuse (or a layer has run-time LoRA pairs) the ops run one by one, with the same results.
    public func feedForward(_ x: Tensor, up: (Weight, Tensor?, [LowRankPair]), down: (Weight, Tensor?, [LowRankPair])) -> Tensor {
        let (upWeight, upBias, upPairs) = up, (downWeight, downBias, downPairs) = down
        let plain = { self.linear(self.gelu(self.linear(x, upWeight, bias: upBias, pairs: upPairs), approximation: .tanh),
                                  downWeight, bias: downBias, pairs: downPairs) }
        let inFeatures = x.dim(-1), rows = x.count / max(1, inFeatures), hiddenWidth = upWeight.shape.first ?? 0
        guard rows > 0, upWeight.format != .int8, downWeight.format != .int8, upWeight.shape.count == 2, downWeight.shape.count == 2,
              upWeight.shape[1] == inFeatures, downWeight.shape[1] == hiddenWidth, upBias.map({ $0.shape == [hiddenWidth] }) ?? true,
              downBias.map({ $0.shape == [downWeight.shape[0]] }) ?? true,
              upPairs.allSatisfy({ $0.scale == 0 }), downPairs.allSatisfy({ $0.scale == 0 })
        else { return plain() }
        let hiddenType = downWeight.precision.operandType
        var first = GemmDescriptor(m: rows, n: hiddenWidth, k: inFeatures, transposeB: true, hasBias: upBias != nil,
                                   operandType: upWeight.precision.operandType)
        first.geluTanh = true
        first.outputType = hiddenType
        let hidden = UnsafeMutableRawPointer.allocate(byteCount: rows * hiddenWidth * hiddenType.byteSize, alignment: 64)
        defer { hidden.deallocate() }
        let fused = x.data.withUnsafeBufferPointer { xs in
            withOperand(xs, as: first.operandType) { a in
                withOptionalPointer(upBias) { bias in backend.fusedLinear(first, a: a, weight: upWeight, bias: bias, output: hidden) }
            }
        }
        guard fused else { return plain() }
        let second = GemmDescriptor(m: rows, n: downWeight.shape[0], k: hiddenWidth, transposeB: true, hasBias: downBias != nil,
                                    operandType: hiddenType)
        return Tensor(shape: Array(x.shape.dropLast()) + [downWeight.shape[0]]) { out in
            withOptionalPointer(downBias) { bias in backend.linear(second, a: UnsafeRawPointer(hidden), weight: downWeight, bias: bias, c: out.baseAddress!) }
        }
    }

    /// Lets the backend put `weight` in its own layout now, for products of about `rows` rows (see `ComputeBackend.prepare`).
    public func prepare(_ weight: Weight, rows: Int) {
        guard weight.shape.count == 2, weight.format != .int8, rows > 0 else { return }
        backend.prepare(weight, as: GemmDescriptor(m: rows, n: weight.shape[0], k: weight.shape[1], transposeB: true,
                                                   operandType: weight.precision.operandType))
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
