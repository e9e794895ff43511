import Foundation
import SafeTensors
import Tensors

/// diffusers `AutoencoderKL` config (vae/config.json).
public struct AutoencoderKLConfig: Decodable, Sendable, Equatable {
    public var inChannels = 3
    public var outChannels = 3
    public var latentChannels = 16
    public var blockOutChannels = [128, 256, 512, 512]
    public var layersPerBlock = 2
    public var normNumGroups = 32
    public var scalingFactor: Float = 1.5305
    public var shiftFactor: Float?
    public var useQuantConv = false
    public var usePostQuantConv = false
    public var midBlockAddAttention = true
    public var downBlockTypes: [String] = []
    public var upBlockTypes: [String] = []

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block", normNumGroups = "norm_num_groups"
        case scalingFactor = "scaling_factor", shiftFactor = "shift_factor", useQuantConv = "use_quant_conv"
        case usePostQuantConv = "use_post_quant_conv", midBlockAddAttention = "mid_block_add_attention"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AutoencoderKLConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4
        blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? [64]
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? 1
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 0.18215
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        useQuantConv = try c.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? true
        usePostQuantConv = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? true
        midBlockAddAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? true
        downBlockTypes = try c.decodeIfPresent([String].self, forKey: .downBlockTypes) ?? []
        upBlockTypes = try c.decodeIfPresent([String].self, forKey: .upBlockTypes) ?? []
    }

    /// SD3's VAE (16 latent channels, no quant convs).
    public static let sd3 = AutoencoderKLConfig()
    /// Pixels per latent cell: 2^(blocks − 1).
    public var scaleFactor: Int { 1 << (blockOutChannels.count - 1) }
}

/// diffusers `AutoencoderKL` (autoencoder_kl.py, vae.py `Encoder`/`Decoder`) for SD3-style VAEs.
public struct AutoencoderKL: Sendable {
    public let config: AutoencoderKLConfig
    let encoderIn: Conv2d?, downBlocks: [([ResnetBlock2D], Downsample2D?)], encoderMid: UNetMidBlock2D?
    let encoderNorm: GroupNorm?, encoderOut: Conv2d?
    let decoderIn: Conv2d, decoderMid: UNetMidBlock2D, upBlocks: [([ResnetBlock2D], Upsample2D?)]
    let decoderNorm: GroupNorm, decoderOut: Conv2d

    /// `withEncoder: false` loads only the decoder (txt2img needs no encoder) and ignores the encoder's weights.
    public init(config: AutoencoderKLConfig, weights: any WeightProvider, precision: Precision, withEncoder: Bool = true) throws {
        self.config = config
        guard !config.useQuantConv && !config.usePostQuantConv else {
            throw ModelError.unsupported(path: weights.source, reason: "VAE with quant convs (SD3's VAE has none)")
        }
        if let bad = (config.downBlockTypes + config.upBlockTypes).first(where: { !["DownEncoderBlock2D", "UpDecoderBlock2D"].contains($0) }) {
            throw ModelError.unsupported(path: weights.source, reason: "VAE block type \(bad)")
        }
        let channels = config.blockOutChannels, groups = config.normNumGroups, layers = config.layersPerBlock
        let (top, latent) = (channels[channels.count - 1], config.latentChannels)
        if withEncoder {
            let e = weights.scope("encoder")
            encoderIn = try Conv2d(e, "conv_in", in: config.inChannels, out: channels[0], kernel: 3, padding: .symmetric(1), precision: precision)
            var previous = channels[0]
            downBlocks = try channels.enumerated().map { i, c in
                let block = e.scope("down_blocks.\(i)")
                let resnets = try (0..<layers).map { j in
                    try ResnetBlock2D(block.scope("resnets.\(j)"), in: j == 0 ? previous : c, out: c, groups: groups, precision: precision)
                }
                previous = c
                let down = i == channels.count - 1 ? nil : try Downsample2D(block.scope("downsamplers.0"), channels: c, precision: precision)
                return (resnets, down)
            }
            encoderMid = try UNetMidBlock2D(e.scope("mid_block"), channels: top, groups: groups, withAttention: config.midBlockAddAttention, precision: precision)
            encoderNorm = try GroupNorm(e, "conv_norm_out", groups: groups, channels: top)
            encoderOut = try Conv2d(e, "conv_out", in: top, out: 2 * latent, kernel: 3, padding: .symmetric(1), precision: precision)
        } else {
            (encoderIn, downBlocks, encoderMid, encoderNorm, encoderOut) = (nil, [], nil, nil, nil)
            for key in weights.unusedKeys where key.hasPrefix("encoder.") { weights.markUsed(key) }
        }
        let d = weights.scope("decoder")
        decoderIn = try Conv2d(d, "conv_in", in: latent, out: top, kernel: 3, padding: .symmetric(1), precision: precision)
        decoderMid = try UNetMidBlock2D(d.scope("mid_block"), channels: top, groups: groups, withAttention: config.midBlockAddAttention, precision: precision)
        let reversed = Array(channels.reversed())
        var previous = top
        upBlocks = try reversed.enumerated().map { i, c in
            let block = d.scope("up_blocks.\(i)")
            let resnets = try (0...layers).map { j in
                try ResnetBlock2D(block.scope("resnets.\(j)"), in: j == 0 ? previous : c, out: c, groups: groups, precision: precision)
            }
            previous = c
            let up = i == reversed.count - 1 ? nil : try Upsample2D(block.scope("upsamplers.0"), channels: c, precision: precision)
            return (resnets, up)
        }
        decoderNorm = try GroupNorm(d, "conv_norm_out", groups: groups, channels: channels[0])
        decoderOut = try Conv2d(d, "conv_out", in: channels[0], out: config.outChannels, kernel: 3, padding: .symmetric(1), precision: precision)
        try weights.requireAllUsed()
    }

    public var hasEncoder: Bool { encoderIn != nil }

    /// latents in VAE space [B, latent, h, w] → images in [−1, 1]-ish [B, 3, h·f, w·f].
    public func decode(_ z: Tensor, compute: Compute, isCancelled: () -> Bool = { false }) throws -> Tensor {
        var h = decoderMid(decoderIn(z, compute), compute)  // [B, C₃, h, w] (C = block_out_channels reversed: 512, 512, 256, 128)
        for (resnets, up) in upBlocks {
            if isCancelled() { throw CancellationError() }
            for resnet in resnets { h = resnet(h, compute) }  // [B, Cᵢ, h·2ⁱ, w·2ⁱ]
            if let up { h = up(h, compute) }  // [B, Cᵢ, h·2ⁱ⁺¹, w·2ⁱ⁺¹]
        }
        return decoderOut(compute.silu(decoderNorm(h, compute)), compute)  // [B, 3, h·f, w·f]
    }

    /// images [B, 3, H, W] in [−1, 1] → the posterior's (mean, logvar), each [B, latent, H/f, W/f], logvar clamped to [−30, 20].
    public func encode(_ x: Tensor, compute: Compute) throws -> (mean: Tensor, logvar: Tensor) {
        guard let encoderIn, let encoderMid, let encoderNorm, let encoderOut else {
            throw ModelError.unsupported(path: "vae", reason: "the VAE was loaded without its encoder")
        }
        var h = encoderIn(x, compute)  // [B, C₀, H, W] (C = block_out_channels: 128, 256, 512, 512)
        for (resnets, down) in downBlocks {
            for resnet in resnets { h = resnet(h, compute) }  // [B, Cᵢ, H/2ⁱ, W/2ⁱ]
            if let down { h = down(h, compute) }  // [B, Cᵢ, H/2ⁱ⁺¹, W/2ⁱ⁺¹]
        }
        let moments = encoderOut(compute.silu(encoderNorm(encoderMid(h, compute), compute)), compute)  // [B, 2·latent, h, w]
        let parts = moments.split([config.latentChannels, config.latentChannels], axis: 1)
        return (parts[0], Tensor(shape: parts[1].shape, data: parts[1].data.map { min(max($0, -30), 20) }))
    }

    /// DiagonalGaussianDistribution.sample: mean + exp(0.5·logvar)·ε with ε from `generator` (one randn of mean's shape).
    public func sample<Source: NormalSource>(mean: Tensor, logvar: Tensor, generator: inout Source) -> Tensor {
        let noise = generator.randn(mean.shape)
        var data = [Float](repeating: 0, count: mean.count)
        for i in 0..<mean.count {
            let std = Foundation.exp(0.5 * logvar.data[i])
            data[i] = mean.data[i] + std * noise[i]
        }
        return Tensor(shape: mean.shape, data: data)
    }

    /// VAE latents → the transformer's space: (z − shift)·scale.
    public func toModelSpace(_ z: Tensor) -> Tensor {
        let shift = config.shiftFactor ?? 0, scale = config.scalingFactor
        return Tensor(shape: z.shape, data: z.data.map { ($0 - shift) * scale })
    }

    /// The transformer's space → VAE latents: z / scale + shift.
    public func fromModelSpace(_ z: Tensor) -> Tensor {
        let shift = config.shiftFactor ?? 0, scale = config.scalingFactor
        return Tensor(shape: z.shape, data: z.data.map { $0 / scale + shift })
    }
}
