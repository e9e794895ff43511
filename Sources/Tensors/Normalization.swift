import Kernels
import Foundation

extension Compute {
    /// torch.nn.functional.layer_norm over the last axis: (x − mean) / sqrt(var + eps) · weight + bias,
    /// biased variance. weight and bias ([D]) are optional (elementwise_affine=False).
    public func layerNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float) -> Tensor {
        let width = x.dim(-1)
        if let weight { precondition(weight.shape == [width], "layerNorm: weight \(weight.shape) is not [\(width)]") }
        if let bias { precondition(bias.shape == [width], "layerNorm: bias \(bias.shape) is not [\(width)]") }
        return withOptionalPointer(weight) { w in
            withOptionalPointer(bias) { b in
                rowwise(x, width: width) { row, out in sd3k_layer_norm_row(row.baseAddress!, out.base, width, eps, w, b) }
            }
        }
    }

    /// RMS norm over the last axis (T5LayerNorm, diffusers RMSNorm): x / sqrt(mean(x²) + eps) · weight.
    public func rmsNorm(_ x: Tensor, weight: Tensor? = nil, eps: Float) -> Tensor {
        let width = x.dim(-1)
        if let weight { precondition(weight.shape == [width], "rmsNorm: weight \(weight.shape) is not [\(width)]") }
        return withOptionalPointer(weight) { w in
            rowwise(x, width: width) { row, out in sd3k_rms_norm_row(row.baseAddress!, out.base, width, eps, w) }
        }
    }

    /// torch.nn.functional.group_norm: x [B, C, *] in `groups` groups of C/groups channels,
    /// normalized over each group's channels and positions, then per-channel weight and bias [C].
    public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float) -> Tensor {
        precondition(x.rank >= 2, "groupNorm: expected [B, C, ...], got \(x.shape)")
        let channels = x.dim(1)
        precondition(groups > 0 && channels % groups == 0, "groupNorm: \(channels) channels do not split into \(groups) groups")
        if let weight { precondition(weight.shape == [channels], "groupNorm: weight \(weight.shape) is not [\(channels)]") }
        if let bias { precondition(bias.shape == [channels], "groupNorm: bias \(bias.shape) is not [\(channels)]") }
        let positions = x.count / max(1, x.dim(0) * channels)
        let perGroup = channels / groups
        return rowwise(x, width: perGroup * positions) { group, out in
            var sum = 0.0
            for v in group { sum += Double(v) }
            let mean = sum / Double(group.count)
            var squares = 0.0
            for v in group { let c = Double(v) - mean; squares += c * c }
            let inverse = Float(1 / (squares / Double(group.count) + Double(eps)).squareRoot())
            let m = Float(mean)
            // Channel of this group's first element: the row index modulo groups picks the group.
            let firstChannel = out.groupIndex % groups * perGroup
            for c in 0..<perGroup {
                let scale = weight?.data[firstChannel + c] ?? 1
                let shift = bias?.data[firstChannel + c] ?? 0
                for p in 0..<positions {
                    let i = c * positions + p
                    out[i] = (group[i] - m) * inverse * scale + shift
                }
            }
        }
    }

    /// Applies `body` to each contiguous row of `width` values, rows split across threads.
    func rowwise(_ x: Tensor, width: Int, _ body: (UnsafeBufferPointer<Float>, inout RowOutput) -> Void) -> Tensor {
        precondition(width > 0 && x.count % width == 0, "row width \(width) does not divide \(x.shape)")
        let rows = x.count / width
        return Tensor(shape: x.shape) { out in
            x.data.withUnsafeBufferPointer { input in
                let minimumRows = max(1, 16384 / width)
                parallelRanges(rows, threads: threads, minimumPerThread: minimumRows) { range in
                    for r in range {
                        let row = UnsafeBufferPointer(rebasing: input[r * width..<(r + 1) * width])
                        var output = RowOutput(base: out.baseAddress! + r * width, groupIndex: r)
                        body(row, &output)
                    }
                }
            }
        }
    }
}

/// Runs `body` with the tensor's storage, or nil.
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.data.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// The output row handed to a `rowwise` body; `groupIndex` is the row's index.
struct RowOutput {
    let base: UnsafeMutablePointer<Float>
    let groupIndex: Int
    subscript(i: Int) -> Float {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}
