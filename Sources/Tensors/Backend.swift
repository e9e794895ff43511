import Kernels

/// The element type of the A and B operands of a product; C and the bias are always fp32.
public enum OperandType: String, Sendable, Hashable, CaseIterable {
    case fp32, bf16
    public var byteSize: Int { self == .fp32 ? 4 : 2 }
}

/// C[m, n] = alpha · A[m, k] · op(B) (+ bias[n]) (+ C when `accumulate`), all row-major.
/// op(B) = Bᵀ with B stored [n, k] when `transposeB` (the layout of a linear weight),
/// else B stored [k, n]. Leading dimensions allow operating on column slices (attention heads).
public struct GemmDescriptor: Hashable, Sendable {
    public var m: Int, n: Int, k: Int
    public var transposeB: Bool
    public var lda: Int, ldb: Int, ldc: Int
    public var alpha: Float
    public var accumulate: Bool
    public var hasBias: Bool
    public var operandType: OperandType
    /// Fused into the product's output (ComputeBackend.fusedLinear): GELU (tanh form) after the bias, and C written
    /// as bf16 (the next product's operand) instead of fp32.
    public var geluTanh = false
    public var outputType: OperandType = .fp32

    public init(m: Int, n: Int, k: Int, transposeB: Bool, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil,
                alpha: Float = 1, accumulate: Bool = false, hasBias: Bool = false, operandType: OperandType = .fp32) {
        self.m = m; self.n = n; self.k = k
        self.transposeB = transposeB
        self.lda = lda ?? k
        self.ldb = ldb ?? (transposeB ? k : n)
        self.ldc = ldc ?? n
        self.alpha = alpha
        self.accumulate = accumulate
        self.hasBias = hasBias
        self.operandType = operandType
        precondition(m > 0 && n > 0 && k > 0, "gemm: empty product \(m)×\(n)×\(k)")
        precondition(self.lda >= k && self.ldc >= n && self.ldb >= (transposeB ? k : n), "gemm: leading dimension too small")
        precondition(!(hasBias && alpha != 1), "gemm: alpha with a bias is not supported")
    }
}

/// 2-D convolution over NCHW input and OIHW weights, zero padding given per side.
public struct ConvDescriptor: Hashable, Sendable {
    public var batch: Int, inChannels: Int, outChannels: Int
    public var height: Int, width: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var strideY: Int, strideX: Int
    public var padTop: Int, padBottom: Int, padLeft: Int, padRight: Int
    public var hasBias: Bool
    public var operandType: OperandType

    public var outHeight: Int { (height + padTop + padBottom - kernelHeight) / strideY + 1 }
    public var outWidth: Int { (width + padLeft + padRight - kernelWidth) / strideX + 1 }

    public init(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int,
                kernelHeight: Int, kernelWidth: Int, strideY: Int, strideX: Int,
                padTop: Int, padBottom: Int, padLeft: Int, padRight: Int,
                hasBias: Bool, operandType: OperandType) {
        self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
        self.height = height; self.width = width
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideY = strideY; self.strideX = strideX
        self.padTop = padTop; self.padBottom = padBottom; self.padLeft = padLeft; self.padRight = padRight
        self.hasBias = hasBias
        self.operandType = operandType
        precondition(strideY > 0 && strideX > 0 && [padTop, padBottom, padLeft, padRight].allSatisfy { $0 >= 0 },
                     "conv2d: bad stride or padding")
        precondition(outHeight > 0 && outWidth > 0, "conv2d: kernel larger than padded input")
    }
}

/// Matrix products and convolutions. Pointers are typed by the descriptor's `operandType`
/// (`Float` for fp32, `UInt16` bf16 bit patterns for bf16); outputs are always `Float`.
public protocol ComputeBackend: AnyObject, Sendable {
    var name: String { get }
    func gemm(_ d: GemmDescriptor, a: UnsafeRawPointer, b: UnsafeRawPointer,
              bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>)
    func conv2d(_ d: ConvDescriptor, input: UnsafeRawPointer, weight: UnsafeRawPointer,
                bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>)
    /// y = x·Wᵀ (+ bias) with a `Weight` the backend may keep in its own layout (`PackedWeight`).
    func linear(_ d: GemmDescriptor, a: UnsafeRawPointer, weight: Weight, bias: UnsafePointer<Float>?,
                c: UnsafeMutablePointer<Float>)
    /// Puts `weight` in the backend's layout for products like `d` ahead of time; a no-op where there is none.
    func prepare(_ weight: Weight, as d: GemmDescriptor)
    /// `linear` with the descriptor's fused output (`geluTanh`, `outputType`) into `output`; false, with nothing
    /// written, where the backend cannot fuse them (the caller then runs the ops one by one).
    func fusedLinear(_ d: GemmDescriptor, a: UnsafeRawPointer, weight: Weight, bias: UnsafePointer<Float>?,
                     output: UnsafeMutableRawPointer) -> Bool
}

extension ComputeBackend {
    /// The plain product, for backends without a layout of their own.
    public func linear(_ d: GemmDescriptor, a: UnsafeRawPointer, weight: Weight, bias: UnsafePointer<Float>?,
                       c: UnsafeMutablePointer<Float>) {
        weight.withOperand { gemm(d, a: a, b: $0, bias: bias, c: c) }
    }

    public func prepare(_ weight: Weight, as d: GemmDescriptor) {}

    public func fusedLinear(_ d: GemmDescriptor, a: UnsafeRawPointer, weight: Weight, bias: UnsafePointer<Float>?,
                            output: UnsafeMutableRawPointer) -> Bool { false }
}

public enum BackendKind: String, Sendable, CaseIterable {
    case oneDNN = "onednn"
    case openBLAS = "openblas"
}

/// bf16 bit patterns (rows × columns, row stride `leading`) widened into a dense fp32 matrix: exact,
/// so an fp32 product of widened operands is a bf16 product with fp32 accumulation.
func widenBF16(_ p: UnsafeRawPointer, rows: Int, columns: Int, leading: Int,
               into out: UnsafeMutablePointer<Float>, threads: Int) {
    let bits = UncheckedSendable(p.assumingMemoryBound(to: UInt16.self))
    let target = UncheckedSendable(out)
    if rows == 1 {
        parallelRanges(columns, threads: threads, minimumPerThread: 1 << 16) { range in
            sd3k_widen_bf16(bits.value + range.lowerBound, target.value + range.lowerBound, range.count)
        }
        return
    }
    parallelRanges(rows, threads: threads, minimumPerThread: max(1, (1 << 16) / max(1, columns))) { range in
        for r in range {
            sd3k_widen_bf16(bits.value + r * leading, target.value + r * columns, columns)
        }
    }
}

func widenBF16(_ p: UnsafeRawPointer, rows: Int, columns: Int, leading: Int, threads: Int = 1) -> [Float] {
    [Float](unsafeUninitializedCapacity: rows * columns) { out, initialized in
        widenBF16(p, rows: rows, columns: columns, leading: leading, into: out.baseAddress!, threads: threads)
        initialized = rows * columns
    }
}
