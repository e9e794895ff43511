import Kernels
import Foundation

/// The engine's compute context: one backend for products and convolutions and one thread
/// count shared by the backend and the elementwise loops. Ops are methods on it.
public struct Compute: Sendable {
    public let backend: any ComputeBackend
    public let threads: Int

    public init(backend kind: BackendKind = .oneDNN, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        let threads = max(1, threads)
        switch kind {
        case .oneDNN: backend = try OneDNNBackend(threads: threads)
        case .openBLAS: backend = OpenBLASBackend(threads: threads)
        }
        self.threads = threads
    }

    public init(backend: any ComputeBackend, threads: Int) {
        self.backend = backend
        self.threads = max(1, threads)
    }
}

public enum Precision: String, Sendable, CaseIterable {
    case fp32, bf16
    public var operandType: OperandType { self == .fp32 ? .fp32 : .bf16 }
}

/// How a weight is stored: as loaded (fp32), rounded to bf16, or weight-only int8 with one scale per
/// output row (its products run in fp32 on the dequantized rows).
public enum WeightFormat: String, Sendable, CaseIterable {
    case fp32, bf16, int8
}

/// A weight prepared once for the backend: fp32 as loaded, bf16 (round to nearest even), or int8.
public struct Weight: Sendable {
    public let shape: [Int]
    public let format: WeightFormat
    let fp32: [Float]
    let bf16: BF16Rows
    let int8: [Int8]
    /// int8 only: scale[row] = max|W[row, :]| / 127, so W ≈ q · scale.
    let scales: [Float]

    public init(_ tensor: Tensor, precision: Precision = .fp32) {
        self.init(tensor, format: precision == .fp32 ? .fp32 : .bf16)
    }

    public init(_ tensor: Tensor, format: WeightFormat) {
        shape = tensor.shape
        self.format = format
        switch format {
        case .fp32: (fp32, bf16, int8, scales) = (tensor.data, BF16Rows([]), [], [])
        case .bf16: (fp32, bf16, int8, scales) = ([], BF16Rows(tensor.data.map(HalfPrecision.bf16)), [], [])
        case .int8:
            let (values, rowScales) = Weight.quantize(tensor)
            (fp32, bf16, int8, scales) = ([], BF16Rows([]), values, rowScales)
        }
    }

    /// The operand form of products with this weight (int8 rows are dequantized to fp32 first).
    public var precision: Precision { format == .bf16 ? .bf16 : .fp32 }

    /// Bytes the weight occupies in memory.
    public var byteCount: Int { fp32.count * 4 + bf16.byteCount + int8.count + scales.count * 4 }

    /// Symmetric per-row int8: q = round_half_even(w / scale) clamped to ±127 (a zero row keeps scale 0).
    static func quantize(_ tensor: Tensor) -> (values: [Int8], scales: [Float]) {
        precondition(tensor.rank >= 2, "int8 weight: expected [out, ...], got \(tensor.shape)")
        let rows = tensor.dim(0), columns = tensor.count / max(1, rows)
        var scales = [Float](repeating: 0, count: rows)
        let values = [Int8](unsafeUninitializedCapacity: tensor.count) { out, initialized in
            tensor.data.withUnsafeBufferPointer { w in
                for r in 0..<rows {
                    let row = UnsafeBufferPointer(rebasing: w[r * columns..<(r + 1) * columns])
                    let largest = row.reduce(Float(0)) { max($0, abs($1)) }
                    let scale = largest / 127
                    scales[r] = scale
                    for j in 0..<columns {
                        let q = scale == 0 ? 0 : (row[j] / scale).rounded(.toNearestOrEven)
                        out[r * columns + j] = Int8(max(-127, min(127, q)))
                    }
                }
            }
            initialized = tensor.count
        }
        return (values, scales)
    }

    /// Rows `rows` of an int8 weight as fp32 (q · scale) into `out` (rows.count × columns).
    func dequantize(rows: Range<Int>, into out: UnsafeMutablePointer<Float>, threads: Int) {
        precondition(format == .int8, "dequantize: the weight is \(format.rawValue)")
        let columns = shape.dropFirst().reduce(1, *)
        let target = UncheckedSendable(out)
        int8.withUnsafeBufferPointer { q in
            let source = UncheckedSendable(q)
            parallelRanges(rows.count, threads: threads, minimumPerThread: max(1, (1 << 15) / max(1, columns))) { part in
                for r in part {
                    let scale = scales[rows.lowerBound + r]
                    let from = source.value.baseAddress! + (rows.lowerBound + r) * columns
                    let to = target.value + r * columns
                    for j in 0..<columns { to[j] = Float(from[j]) * scale }
                }
            }
        }
    }

    /// Runs `body` with the raw operand pointer in the form the descriptor's `operandType` names.
    public func withOperand<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        switch format {
        case .fp32: return try fp32.withUnsafeBytes { try body($0.baseAddress!) }
        case .bf16: return try bf16.withPlain(count: shape.reduce(1, *)) { try body($0) }
        case .int8: preconditionFailure("an int8 weight has no single operand; products dequantize it by rows")
        }
    }
}

extension Compute {
    /// The three operands of a weight product: x in the weight's operand form, the weight, the bias.
    func withOperands<R>(_ x: Tensor, _ weight: Weight, bias: Tensor?,
                         _ body: (UnsafeRawPointer, UnsafeRawPointer, UnsafePointer<Float>?) -> R) -> R {
        x.data.withUnsafeBufferPointer { xs in
            withOperand(xs, as: weight.precision.operandType) { a in
                weight.withOperand { b in
                    guard let bias else { return body(a, b, nil) }
                    return bias.data.withUnsafeBufferPointer { body(a, b, $0.baseAddress) }
                }
            }
        }
    }

    /// Runs `body` with `values` in the requested operand form (bf16 values are rounded copies, made with the
    /// vector kernels across the threads).
    public func withOperand<R>(_ values: UnsafeBufferPointer<Float>, as type: OperandType,
                        _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        switch type {
        case .fp32:
            return try body(UnsafeRawPointer(values.baseAddress!))
        case .bf16:
            let rounded = [UInt16](unsafeUninitializedCapacity: values.count) { out, initialized in
                let target = UncheckedSendable(out.baseAddress!)
                parallelRanges(values.count, threads: threads, minimumPerThread: 1 << 15) { range in
                    sd3k_round_bf16(values.baseAddress! + range.lowerBound, target.value + range.lowerBound, range.count)
                }
                initialized = values.count
            }
            return try rounded.withUnsafeBytes { try body($0.baseAddress!) }
        }
    }
}
