import Foundation

public enum GELUApproximation: Sendable {
    /// 0.5·x·(1 + erf(x/√2)), torch's default.
    case none
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), approximate="tanh".
    case tanh
}

extension Compute {
    public func gelu(_ x: Tensor, approximation: GELUApproximation = .none) -> Tensor {
        switch approximation {
        case .none:
            return map(x) { v in 0.5 * v * (1 + erf(v * 0.70710678118654752)) }
        case .tanh:
            return map(x) { v in 0.5 * v * (1 + Foundation.tanh(0.79788456080286536 * (v + 0.044715 * v * v * v))) }
        }
    }

    /// x·sigmoid(1.702·x), CLIP's quick_gelu (transformers activations.QuickGELUActivation).
    public func quickGELU(_ x: Tensor) -> Tensor {
        map(x) { v in v / (1 + exp(-1.702 * v)) }
    }

    /// x·sigmoid(x).
    public func silu(_ x: Tensor) -> Tensor {
        map(x) { v in v / (1 + exp(-v)) }
    }

    /// Softmax over the last axis, max-subtracted so large logits do not overflow.
    /// A row that is entirely −inf (fully masked) gives NaN, as torch does.
    public func softmax(_ x: Tensor) -> Tensor {
        let width = x.dim(-1)
        return rowwise(x, width: width) { row, out in
            softmaxRow(row.baseAddress!, out.base, width)
        }
    }

    func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        Tensor(shape: x.shape) { out in
            x.data.withUnsafeBufferPointer { input in
                parallelRanges(x.count, threads: threads) { range in
                    for i in range { out[i] = f(input[i]) }
                }
            }
        }
    }
}

@inline(__always)
func softmaxRow(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ width: Int) {
    var maximum = -Float.infinity
    for i in 0..<width { maximum = max(maximum, input[i]) }
    var sum: Float = 0
    for i in 0..<width {
        let e = exp(input[i] - maximum)
        output[i] = e
        sum += e
    }
    let inverse = 1 / sum
    for i in 0..<width { output[i] *= inverse }
}
