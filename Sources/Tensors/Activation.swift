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
            return mapSpans(x) { input, output, count in
                for i in 0..<count {
                    let v = input[i]
                    output[i] = 0.5 * v * (1 + fastTanh(0.79788456080286536 * (v + 0.044715 * v * v * v)))
                }
            }
        }
    }

    /// x·sigmoid(1.702·x), CLIP's quick_gelu (transformers activations.QuickGELUActivation).
    public func quickGELU(_ x: Tensor) -> Tensor {
        mapSpans(x) { input, output, count in
            for i in 0..<count { output[i] = input[i] / (1 + fastExp(-1.702 * input[i])) }
        }
    }

    /// max(x, 0); NaN stays NaN, as torch.relu.
    public func relu(_ x: Tensor) -> Tensor {
        mapSpans(x) { input, output, count in
            for i in 0..<count { output[i] = input[i] < 0 ? 0 : input[i] }
        }
    }

    /// x·sigmoid(x).
    public func silu(_ x: Tensor) -> Tensor {
        mapSpans(x) { input, output, count in
            for i in 0..<count { output[i] = input[i] / (1 + fastExp(-input[i])) }
        }
    }

    /// Softmax over the last axis, max-subtracted so large logits do not overflow.
    /// A row that is entirely −inf (fully masked) gives NaN, as torch does.
    public func softmax(_ x: Tensor) -> Tensor {
        let width = x.dim(-1)
        return rowwise(x, width: width) { row, out in
            softmaxRow(row.baseAddress!, out.base, width)
        }
    }

    /// `body` over contiguous spans of x, in parallel: a loop written inside `body` (no call per element)
    /// is one the optimiser can vectorise.
    func mapSpans(_ x: Tensor, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        Tensor(shape: x.shape) { out in
            x.data.withUnsafeBufferPointer { input in
                parallelRanges(x.count, threads: threads) { range in
                    body(input.baseAddress! + range.lowerBound, out.baseAddress! + range.lowerBound, range.count)
                }
            }
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
    for i in 0..<width { output[i] = fastExp(input[i] - maximum) }
    var sum: Float = 0
    for i in 0..<width { sum += output[i] }
    let inverse = 1 / sum
    for i in 0..<width { output[i] *= inverse }
}
