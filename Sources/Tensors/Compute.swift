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
    var operandType: OperandType { self == .fp32 ? .fp32 : .bf16 }
}

/// A weight prepared once for the backend: fp32 as loaded, or bf16 (round to nearest even).
public struct Weight: Sendable {
    public let shape: [Int]
    public let precision: Precision
    let fp32: [Float]
    let bf16: [UInt16]

    public init(_ tensor: Tensor, precision: Precision = .fp32) {
        shape = tensor.shape
        self.precision = precision
        switch precision {
        case .fp32:
            fp32 = tensor.data
            bf16 = []
        case .bf16:
            fp32 = []
            bf16 = tensor.data.map(HalfPrecision.bf16)
        }
    }

    /// Runs `body` with the raw operand pointer in the form the descriptor's `operandType` names.
    func withOperand<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        switch precision {
        case .fp32: return try fp32.withUnsafeBytes { try body($0.baseAddress!) }
        case .bf16: return try bf16.withUnsafeBytes { try body($0.baseAddress!) }
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

    /// Runs `body` with `values` in the requested operand form (bf16 values are rounded copies).
    func withOperand<R>(_ values: UnsafeBufferPointer<Float>, as type: OperandType,
                        _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        switch type {
        case .fp32:
            return try body(UnsafeRawPointer(values.baseAddress!))
        case .bf16:
            var rounded = [UInt16](repeating: 0, count: values.count)
            rounded.withUnsafeMutableBufferPointer { out in
                parallelRanges(values.count, threads: threads) { range in
                    for i in range { out[i] = HalfPrecision.bf16(values[i]) }
                }
            }
            return try rounded.withUnsafeBytes { try body($0.baseAddress!) }
        }
    }
}
