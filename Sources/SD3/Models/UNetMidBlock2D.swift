import SafeTensors
import Tensors

/// diffusers `UNetMidBlock2D` as the VAE uses it: resnet → single-head self-attention over pixels → resnet.
struct UNetMidBlock2D: Sendable {
    /// The VAE's spatial self-attention (`Attention` with group norm and a residual, one head of C channels).
    struct SpatialAttention: Sendable {
        let norm: GroupNorm
        let q: Linear, k: Linear, v: Linear, out: Linear

        init(_ scope: WeightScope, channels: Int, groups: Int, precision: Precision) throws {
            norm = try GroupNorm(scope, "group_norm", groups: groups, channels: channels)
            q = try Linear(scope, "to_q", in: channels, out: channels, precision: precision)
            k = try Linear(scope, "to_k", in: channels, out: channels, precision: precision)
            v = try Linear(scope, "to_v", in: channels, out: channels, precision: precision)
            out = try Linear(scope, "to_out.0", in: channels, out: channels, precision: precision)
        }

        /// x [B, C, H, W] → x + attention(x), scores over all H·W pixels (chunked, never H·W × H·W at once).
        func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
            let (b, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
            let tokens = norm(x, compute).reshaped([b, c, h * w]).permuted([0, 2, 1])  // [B, HW, C]
            let attended = compute.attention(query: q(tokens, compute, .none), key: k(tokens, compute, .none), value: v(tokens, compute, .none), heads: 1)
            let o = out(attended, compute, .none).permuted([0, 2, 1]).reshaped([b, c, h, w])  // [B, C, H, W]
            return compute.add(x, o)
        }
    }

    let resnet1: ResnetBlock2D
    let attention: SpatialAttention?
    let resnet2: ResnetBlock2D

    init(_ scope: WeightScope, channels: Int, groups: Int, withAttention: Bool, precision: Precision) throws {
        resnet1 = try ResnetBlock2D(scope.scope("resnets.0"), in: channels, out: channels, groups: groups, precision: precision)
        attention = withAttention ? try SpatialAttention(scope.scope("attentions.0"), channels: channels, groups: groups, precision: precision) : nil
        resnet2 = try ResnetBlock2D(scope.scope("resnets.1"), in: channels, out: channels, groups: groups, precision: precision)
    }

    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
        var h = resnet1(x, compute)  // [B, C, H, W] throughout
        if let attention { h = attention(h, compute) }
        return resnet2(h, compute)
    }
}
