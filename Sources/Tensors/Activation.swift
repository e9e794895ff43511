import Kernels
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
            return mapSpans(x) { input, output, count in sd3k_gelu_tanh(input, output, count) }
        }
    }

    /// x·sigmoid(1.702·x), CLIP's quick_gelu (transformers activations.QuickGELUActivation).
    public func quickGELU(_ x: Tensor) -> Tensor {
        mapSpans(x) { input, output, count in sd3k_sigmoid_mul(input, output, count, 1.702) }
    }

    /// max(x, 0); NaN stays NaN, as torch.relu.
    public func relu(_ x: Tensor) -> Tensor {
        mapSpans(x) { input, output, count in
            for i in 0..<count { output[i] = input[i] < 0 ? 0 : input[i] }
        }
    }

    /// x·sigmoid(x).
    public func silu(_ x: Tensor) -> Tensor {
        mapSpans(x) { input, output, count in sd3k_sigmoid_mul(input, output, count, 1) }
    }

    /// Softmax over the last axis, max-subtracted so large logits do not overflow.
    /// A row that is entirely −inf (fully masked) gives NaN, as torch does.
    public func softmax(_ x: Tensor) -> Tensor {
        let width = x.dim(-1)
        return rowwise(x, width: width) { row, out in
            sd3k_softmax_row(row.baseAddress!, out.base, width)
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
