import CBLAS

/// OpenBLAS (fp32 sgemm): the portable fallback and an independent check of oneDNN.
/// Debian's OpenBLAS has no bf16 kernels, so bf16 operands are widened to fp32 first; the
/// result equals a bf16 product with fp32 accumulation up to summation order.
public final class OpenBLASBackend: ComputeBackend {
    public let name = "openblas"
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
        openblas_set_num_threads(Int32(self.threads))
    }

    /// openblas_get_config() without its leading "OpenBLAS " ("0.3.21 NO_LAPACKE DYNAMIC_ARCH …"): callers name it.
    public static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        let text = String(cString: config)
        return text.hasPrefix("OpenBLAS ") ? String(text.dropFirst("OpenBLAS ".count)) : text
    }

    public func gemm(_ d: GemmDescriptor, a: UnsafeRawPointer, b: UnsafeRawPointer,
                     bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>) {
        precondition(d.hasBias == (bias != nil), "gemm: bias pointer does not match the descriptor")
        if let bias {
            for row in 0..<d.m {
                let out = c + row * d.ldc
                if d.accumulate {
                    for j in 0..<d.n { out[j] += bias[j] }
                } else {
                    out.update(from: bias, count: d.n)
                }
            }
        }
        let beta: Float = (d.accumulate || d.hasBias) ? 1 : 0
        let transB = d.transposeB ? CblasTrans : CblasNoTrans
        switch d.operandType {
        case .fp32:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB, Int32(d.m), Int32(d.n), Int32(d.k), d.alpha,
                        a.assumingMemoryBound(to: Float.self), Int32(d.lda),
                        b.assumingMemoryBound(to: Float.self), Int32(d.ldb), beta, c, Int32(d.ldc))
        case .bf16:
            let wideA = widenBF16(a, rows: d.m, columns: d.k, leading: d.lda, threads: threads)
            let bRows = d.transposeB ? d.n : d.k, bColumns = d.transposeB ? d.k : d.n
            let wideB = widenBF16(b, rows: bRows, columns: bColumns, leading: d.ldb, threads: threads)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB, Int32(d.m), Int32(d.n), Int32(d.k), d.alpha,
                        wideA, Int32(d.k), wideB, Int32(bColumns), beta, c, Int32(d.ldc))
        }
    }

    public func conv2d(_ d: ConvDescriptor, input: UnsafeRawPointer, weight: UnsafeRawPointer,
                       bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        precondition(d.hasBias == (bias != nil), "conv2d: bias pointer does not match the descriptor")
        let patch = d.inChannels * d.kernelHeight * d.kernelWidth
        let pixels = d.outHeight * d.outWidth
        let imageSize = d.inChannels * d.height * d.width
        let wideWeight: [Float] = d.operandType == .fp32
            ? Array(UnsafeBufferPointer(start: weight.assumingMemoryBound(to: Float.self), count: d.outChannels * patch))
            : widenBF16(weight, rows: d.outChannels, columns: patch, leading: patch)
        var columns = [Float](repeating: 0, count: patch * pixels)
        for n in 0..<d.batch {
            let image: [Float] = d.operandType == .fp32
                ? Array(UnsafeBufferPointer(start: input.assumingMemoryBound(to: Float.self) + n * imageSize, count: imageSize))
                : widenBF16(input + n * imageSize * 2, rows: 1, columns: imageSize, leading: imageSize)
            im2col(image, d, into: &columns)
            let out = output + n * d.outChannels * pixels
            if let bias {
                for o in 0..<d.outChannels { (out + o * pixels).update(repeating: bias[o], count: pixels) }
            }
            // out[Cout, pixels] = W[Cout, patch] · columns[patch, pixels]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d.outChannels), Int32(pixels), Int32(patch), 1,
                        wideWeight, Int32(patch), columns, Int32(pixels), bias == nil ? 0 : 1, out, Int32(pixels))
        }
    }

    /// Unfolds one CHW image into [Cin·kh·kw, Ho·Wo] columns with zero padding.
    private func im2col(_ image: [Float], _ d: ConvDescriptor, into columns: inout [Float]) {
        let (oh, ow) = (d.outHeight, d.outWidth)
        var row = 0
        for c in 0..<d.inChannels {
            for ky in 0..<d.kernelHeight {
                for kx in 0..<d.kernelWidth {
                    let base = row * oh * ow
                    for y in 0..<oh {
                        let iy = y * d.strideY + ky - d.padTop
                        for x in 0..<ow {
                            let ix = x * d.strideX + kx - d.padLeft
                            let inside = iy >= 0 && iy < d.height && ix >= 0 && ix < d.width
                            columns[base + y * ow + x] = inside ? image[(c * d.height + iy) * d.width + ix] : 0
                        }
                    }
                    row += 1
                }
            }
        }
    }
}
