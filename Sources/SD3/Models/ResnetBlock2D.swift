import SafeTensors
import Tensors

/// A Conv2d layer (weights [out, in, k, k] prepared for the backend, bias [out] unless built with `bias: false`).
struct Conv2d: Sendable {
    let weight: Weight
    let bias: Tensor?
    let stride: Int
    let padding: Padding

    init(_ scope: WeightScope, _ name: String, in inChannels: Int, out outChannels: Int, kernel: Int,
         stride: Int = 1, padding: Padding, bias hasBias: Bool = true, precision: Precision) throws {
        let layer = scope.scope(name)
        weight = Weight(try layer.tensor("weight", shape: [outChannels, inChannels, kernel, kernel]), precision: precision)
        bias = hasBias ? try layer.tensor("bias", shape: [outChannels]) : nil
        self.stride = stride
        self.padding = padding
    }

    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
        compute.conv2d(x, weight, bias: bias, stride: stride, padding: padding)
    }
}

/// torch.nn.GroupNorm with affine weight and bias.
struct GroupNorm: Sendable {
    let groups: Int
    let weight: Tensor, bias: Tensor
    let eps: Float

    init(_ scope: WeightScope, _ name: String, groups: Int, channels: Int, eps: Float = 1e-6) throws {
        self.groups = groups
        weight = try scope.tensor("\(name).weight", shape: [channels])
        bias = try scope.tensor("\(name).bias", shape: [channels])
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
        compute.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// diffusers `ResnetBlock2D` (resnet.py) without a time embedding:
/// y = shortcut(x) + conv2(SiLU(GN2(conv1(SiLU(GN1(x)))))), shortcut a 1×1 conv when channels change.
struct ResnetBlock2D: Sendable {
    let norm1: GroupNorm, conv1: Conv2d
    let norm2: GroupNorm, conv2: Conv2d
    let shortcut: Conv2d?

    init(_ scope: WeightScope, in inChannels: Int, out outChannels: Int, groups: Int, precision: Precision) throws {
        norm1 = try GroupNorm(scope, "norm1", groups: groups, channels: inChannels)
        conv1 = try Conv2d(scope, "conv1", in: inChannels, out: outChannels, kernel: 3, padding: .symmetric(1), precision: precision)
        norm2 = try GroupNorm(scope, "norm2", groups: groups, channels: outChannels)
        conv2 = try Conv2d(scope, "conv2", in: outChannels, out: outChannels, kernel: 3, padding: .symmetric(1), precision: precision)
        shortcut = inChannels == outChannels ? nil
            : try Conv2d(scope, "conv_shortcut", in: inChannels, out: outChannels, kernel: 1, padding: .symmetric(0), precision: precision)
    }

    /// x [B, Cin, H, W] → [B, Cout, H, W].
    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
        let h = conv1(compute.silu(norm1(x, compute)), compute)  // [B, Cout, H, W]
        let out = conv2(compute.silu(norm2(h, compute)), compute)  // [B, Cout, H, W]
        return compute.add(shortcut.map { $0(x, compute) } ?? x, out)  // shortcut: [B, Cin, H, W] → [B, Cout, H, W]
    }
}

/// diffusers `Upsample2D` (use_conv): nearest ×2, then a 3×3 conv.
struct Upsample2D: Sendable {
    let conv: Conv2d
    init(_ scope: WeightScope, channels: Int, precision: Precision) throws {
        conv = try Conv2d(scope, "conv", in: channels, out: channels, kernel: 3, padding: .symmetric(1), precision: precision)
    }
    /// x [B, C, H, W] → [B, C, 2H, 2W].
    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor { conv(compute.upsampleNearest2x(x), compute) }
}

/// diffusers `Downsample2D` (use_conv, padding 0): zero-pad right and bottom by one, 3×3 conv, stride 2.
struct Downsample2D: Sendable {
    let conv: Conv2d
    init(_ scope: WeightScope, channels: Int, precision: Precision) throws {
        conv = try Conv2d(scope, "conv", in: channels, out: channels, kernel: 3, stride: 2,
                          padding: Padding(top: 0, bottom: 1, left: 0, right: 1), precision: precision)
    }
    /// x [B, C, H, W] → [B, C, H/2, W/2] (H, W even, as the VAE's are).
    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor { conv(x, compute) }
}
