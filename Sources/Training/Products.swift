import Kernels
import Tensors

/// Row-major matrix products for the backward pass, on the compute backend's gemm (fp32 operands unless a frozen
/// weight is bf16). Shapes are given explicitly: the tensors are flat [rows, columns] views of [.., columns].
extension Compute {
    /// c (+)= alpha · a[m, k] · op(b); op(b) = bᵀ with b [n, k] when `transposeB`, else b [k, n].
    func gemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int? = nil, _ b: UnsafePointer<Float>, ldb: Int? = nil,
              transposeB: Bool, into c: UnsafeMutablePointer<Float>, ldc: Int? = nil, alpha: Float = 1, accumulate: Bool = false) {
        guard m > 0, n > 0, k > 0 else {
            if !accumulate && m > 0 && n > 0 { for r in 0..<m { (c + r * (ldc ?? n)).update(repeating: 0, count: n) } }
            return
        }
        let d = GemmDescriptor(m: m, n: n, k: k, transposeB: transposeB, lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, accumulate: accumulate)
        backend.gemm(d, a: UnsafeRawPointer(a), b: UnsafeRawPointer(b), bias: nil, c: c)
    }

    /// a [m, k] · op(b) as a new [m, n] array.
    func product(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transposeB: Bool, alpha: Float = 1) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    gemm(m: m, n: n, k: k, pa.baseAddress!, pb.baseAddress!, transposeB: transposeB, into: pc.baseAddress!, alpha: alpha)
                }
            }
        }
        return c
    }

    /// y = x·Wᵀ + b (x [.., in], W [out, in]) with `products` operands: a bf16 weight with fp32 products is widened to
    /// fp32 (exact) and multiplies the fp32 x; otherwise `linear`'s own (bf16 x for a bf16 weight).
    func linear(_ x: Tensor, _ weight: Weight, bias: Tensor?, products: OperandType) -> Tensor {
        guard weight.format == .bf16, products == .fp32 else { return linear(x, weight, bias: bias) }
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        precondition(x.dim(-1) == inFeatures && (bias == nil || bias!.shape == [outFeatures]),
                     "linear: input \(x.shape), weight \(weight.shape), bias \(bias?.shape ?? [])")
        let rows = x.count / inFeatures, shape = Array(x.shape.dropLast()) + [outFeatures]
        guard rows > 0 else { return Tensor(zeros: shape) }
        let d = GemmDescriptor(m: rows, n: outFeatures, k: inFeatures, transposeB: true, hasBias: bias != nil)
        return withWidened(weight) { w in
            Tensor(shape: shape) { out in
                x.data.withUnsafeBufferPointer { xs in
                    if let bias {
                        bias.data.withUnsafeBufferPointer { backend.gemm(d, a: xs.baseAddress!, b: w, bias: $0.baseAddress!, c: out.baseAddress!) }
                    } else {
                        backend.gemm(d, a: xs.baseAddress!, b: w, bias: nil, c: out.baseAddress!)
                    }
                }
            }
        }
    }

    /// A bf16 weight's rows widened to fp32 in a scratch array for the duration of `body`.
    func withWidened<R>(_ weight: Weight, _ body: (UnsafePointer<Float>) -> R) -> R {
        let count = weight.shape.reduce(1, *)
        let wide = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            weight.withOperand { raw in
                let halves = raw.assumingMemoryBound(to: UInt16.self)
                parallelRanges(count, threads: threads, minimumPerThread: 1 << 16) { range in
                    sd3k_widen_bf16(halves + range.lowerBound, buffer.baseAddress! + range.lowerBound, range.count)
                }
            }
            initialized = count
        }
        return wide.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// dy [m, out] · W [out, in] → [m, in]: the input gradient of y = x·Wᵀ, with the forward's `products` operands
    /// (bf16: dy rounded to bf16, as a bf16 forward rounds x; fp32: a bf16 weight widened).
    func productWithWeight(_ dy: [Float], rows m: Int, _ weight: Weight, products: OperandType) -> [Float] {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        var dx = [Float](repeating: 0, count: m * inFeatures)
        guard m > 0 else { return dx }
        if weight.format == .bf16 && products == .fp32 {
            let d = GemmDescriptor(m: m, n: inFeatures, k: outFeatures, transposeB: false)
            withWidened(weight) { w in
                dx.withUnsafeMutableBufferPointer { out in
                    dy.withUnsafeBufferPointer { backend.gemm(d, a: $0.baseAddress!, b: w, bias: nil, c: out.baseAddress!) }
                }
            }
            return dx
        }
        let type = weight.precision.operandType
        let d = GemmDescriptor(m: m, n: inFeatures, k: outFeatures, transposeB: false, operandType: type)
        dx.withUnsafeMutableBufferPointer { out in
            dy.withUnsafeBufferPointer { values in
                withOperand(values, as: type) { a in
                    weight.withOperand { w in backend.gemm(d, a: a, b: w, bias: nil, c: out.baseAddress!) }
                }
            }
        }
        return dx
    }
}

/// a [rows, columns] → aᵀ [columns, rows].
func transposed(_ a: [Float], rows: Int, columns: Int) -> [Float] {
    var t = [Float](repeating: 0, count: a.count)
    a.withUnsafeBufferPointer { pa in
        t.withUnsafeMutableBufferPointer { pt in
            for r in 0..<rows {
                for c in 0..<columns { pt[c * rows + r] = pa[r * columns + c] }
            }
        }
    }
    return t
}

/// a += b elementwise.
func accumulate(_ a: inout [Float], _ b: [Float]) {
    precondition(a.count == b.count, "accumulate: \(a.count) and \(b.count) values")
    a.withUnsafeMutableBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in for i in 0..<pa.count { pa[i] += pb[i] } }
    }
}
