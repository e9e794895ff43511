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

    /// dy [m, out] · W [out, in] → [m, in]: the input gradient of y = x·Wᵀ. A bf16 weight multiplies dy rounded to
    /// bf16 (its operand form), as its forward product does.
    func productWithWeight(_ dy: [Float], rows m: Int, _ weight: Weight) -> [Float] {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        var dx = [Float](repeating: 0, count: m * inFeatures)
        guard m > 0 else { return dx }
        let type = weight.precision.operandType
        let d = GemmDescriptor(m: m, n: inFeatures, k: outFeatures, transposeB: false, operandType: type)
        dx.withUnsafeMutableBufferPointer { out in
            weight.withOperand { w in
                switch type {
                case .fp32:
                    dy.withUnsafeBytes { backend.gemm(d, a: $0.baseAddress!, b: w, bias: nil, c: out.baseAddress!) }
                case .bf16:
                    let rounded = dy.map(HalfPrecision.bf16)
                    rounded.withUnsafeBytes { backend.gemm(d, a: $0.baseAddress!, b: w, bias: nil, c: out.baseAddress!) }
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
