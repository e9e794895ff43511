/// Zero padding per side, as torch's `padding=` (symmetric) or `F.pad(x, (left, right, top, bottom))`.
public struct Padding: Hashable, Sendable {
    public var top: Int, bottom: Int, left: Int, right: Int
    public init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top; self.bottom = bottom; self.left = left; self.right = right
    }
    public static func symmetric(_ p: Int) -> Padding { Padding(top: p, bottom: p, left: p, right: p) }
}

extension Compute {
    /// torch.nn.functional.conv2d: x [B, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] → [B, Cout, Ho, Wo].
    public func conv2d(_ x: Tensor, _ weight: Weight, bias: Tensor? = nil, stride: Int = 1, padding: Padding = .symmetric(0)) -> Tensor {
        precondition(x.rank == 4, "conv2d: input must be [B, C, H, W], got \(x.shape)")
        precondition(weight.shape.count == 4 && weight.shape[1] == x.dim(1),
                     "conv2d: weight \(weight.shape) does not take \(x.dim(1)) input channels")
        precondition(weight.format != .int8, "conv2d: int8 weights are for linear layers only")
        if let bias { precondition(bias.shape == [weight.shape[0]], "conv2d: bias \(bias.shape) is not [\(weight.shape[0])]") }
        let d = ConvDescriptor(batch: x.dim(0), inChannels: x.dim(1), outChannels: weight.shape[0],
                               height: x.dim(2), width: x.dim(3), kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
                               strideY: stride, strideX: stride,
                               padTop: padding.top, padBottom: padding.bottom, padLeft: padding.left, padRight: padding.right,
                               hasBias: bias != nil, operandType: weight.precision.operandType)
        return Tensor(shape: [d.batch, d.outChannels, d.outHeight, d.outWidth]) { out in
            withOperands(x, weight, bias: bias) { input, w, bias in backend.conv2d(d, input: input, weight: w, bias: bias, output: out.baseAddress!) }
        }
    }
}
