import Foundation

/// A dense tensor: an explicit shape and contiguous row-major `Float` storage.
/// No strides, no views, no autograd: every op returns a new contiguous tensor.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(Tensor.count(of: shape) == data.count,
                     "Tensor: shape \(shape) holds \(Tensor.count(of: shape)) values, data has \(data.count)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: Tensor.count(of: shape)))
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: value, count: Tensor.count(of: shape)))
    }

    /// Storage that the caller fills completely through `fill` (no zeroing pass).
    public init(shape: [Int], uninitialized fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let n = Tensor.count(of: shape)
        self.shape = shape
        self.data = try [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            try fill(buffer)
            initialized = n
        }
    }

    public static func count(of shape: [Int]) -> Int { shape.reduce(1, *) }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// Size of axis `i`; negative `i` counts from the end.
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot infer \(newShape) from \(shape)")
            resolved[inferred] = count / known
        }
        precondition(Tensor.count(of: resolved) == count, "reshape: \(shape) (\(count) values) cannot become \(newShape)")
        var copy = self
        copy.shape = resolved
        return copy
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = data.prefix(6).map { String(format: "%.5g", Double($0)) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 6 ? ", …" : "")]"
    }
}
