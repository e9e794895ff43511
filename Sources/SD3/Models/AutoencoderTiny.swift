import Foundation
import SafeTensors
import Tensors

/// diffusers `AutoencoderTiny` config (autoencoder_tiny.py, 0.42.1; madebyollin/taesd3's config.json). A key that is
/// absent takes diffusers' default, as `from_pretrained` does.
public struct AutoencoderTinyConfig: Decodable, Sendable, Equatable {
    /// `_class_name`, when the file names one: a folder of another VAE class is refused by name.
    public var className: String?
    public var inChannels = 3
    public var outChannels = 3
    public var encoderBlockOutChannels = [64, 64, 64, 64]
    public var decoderBlockOutChannels = [64, 64, 64, 64]
    public var actFn = "relu"
    public var upsampleFn = "nearest"
    public var latentChannels = 4
    public var upsamplingScalingFactor = 2
    public var numEncoderBlocks = [1, 3, 3, 3]
    public var numDecoderBlocks = [3, 3, 3, 1]
    /// The SD3 pipeline decodes `latents / scaling_factor + shift_factor` whatever the VAE class; 1.0 and 0.0 here,
    /// so TAESD3 takes the transformer's latents as they are.
    public var scalingFactor: Float = 1.0
    public var shiftFactor: Float = 0.0

    enum CodingKeys: String, CodingKey {
        case className = "_class_name", inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
        case encoderBlockOutChannels = "encoder_block_out_channels", decoderBlockOutChannels = "decoder_block_out_channels"
        case actFn = "act_fn", upsampleFn = "upsample_fn", upsamplingScalingFactor = "upsampling_scaling_factor"
        case numEncoderBlocks = "num_encoder_blocks", numDecoderBlocks = "num_decoder_blocks"
        case scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AutoencoderTinyConfig()
        className = try c.decodeIfPresent(String.self, forKey: .className)
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? d.latentChannels
        encoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .encoderBlockOutChannels) ?? d.encoderBlockOutChannels
        decoderBlockOutChannels = try c.decodeIfPresent([Int].self, forKey: .decoderBlockOutChannels) ?? d.decoderBlockOutChannels
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? d.actFn
        upsampleFn = try c.decodeIfPresent(String.self, forKey: .upsampleFn) ?? d.upsampleFn
        upsamplingScalingFactor = try c.decodeIfPresent(Int.self, forKey: .upsamplingScalingFactor) ?? d.upsamplingScalingFactor
        numEncoderBlocks = try c.decodeIfPresent([Int].self, forKey: .numEncoderBlocks) ?? d.numEncoderBlocks
        numDecoderBlocks = try c.decodeIfPresent([Int].self, forKey: .numDecoderBlocks) ?? d.numDecoderBlocks
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? d.scalingFactor
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor) ?? d.shiftFactor
    }

    /// TAESD3 as madebyollin/taesd's taesd.py builds it for SD3 (16 latent channels), with `channels` wide convs
    /// (64 in the released files): the config of the single files, which carry none.
    public static func taesd3(channels: Int = 64) -> AutoencoderTinyConfig {
        var config = AutoencoderTinyConfig()
        config.latentChannels = 16
        config.encoderBlockOutChannels = Array(repeating: channels, count: 4)
        config.decoderBlockOutChannels = Array(repeating: channels, count: 4)
        return config
    }

    /// Pixels per latent cell: one ×2 upsampling between decoder levels.
    public var scaleFactor: Int { 1 << (numDecoderBlocks.count - 1) }
}

extension AutoencoderTinyConfig: CheckedConfig {
    public var problem: String? {
        typealias C = ConfigCheck
        if let className, className != "AutoencoderTiny" { return "_class_name is \(className), not AutoencoderTiny (TAESD3)" }
        if let p = C.first({ C.count("in_channels", inChannels, 1...64) }, { C.count("out_channels", outChannels, 1...64) },
                           { C.count("latent_channels", latentChannels, 1...1024) },
                           { C.count("num_encoder_blocks' length", numEncoderBlocks.count, 1...8) },
                           { C.count("num_decoder_blocks' length", numDecoderBlocks.count, 1...8) }) { return p }
        for (key, counts, channels) in [("encoder", numEncoderBlocks, encoderBlockOutChannels), ("decoder", numDecoderBlocks, decoderBlockOutChannels)] {
            if channels.count != counts.count { return "\(key)_block_out_channels has \(channels.count) entries and num_\(key)_blocks \(counts.count)" }
            if let p = counts.lazy.compactMap({ C.count("num_\(key)_blocks entry", $0, 0...64) }).first { return p }
            if let p = channels.lazy.compactMap({ C.count("\(key)_block_out_channels entry", $0, C.width) }).first { return p }
            // EncoderTiny/DecoderTiny chain each level's convs at that level's width: unequal widths cannot run.
            if Set(channels).count != 1 { return "\(key)_block_out_channels \(channels): TAESD's levels all have one width" }
        }
        if actFn != "relu" { return "act_fn '\(actFn)': TAESD uses relu (no other is supported)" }
        if upsampleFn != "nearest" { return "upsample_fn '\(upsampleFn)': TAESD uses nearest (no other is supported)" }
        if upsamplingScalingFactor != 2 { return "upsampling_scaling_factor is \(upsamplingScalingFactor); only 2 is supported" }
        if let p = C.finite("shift_factor", shiftFactor) { return p }
        guard scalingFactor.isFinite, abs(scalingFactor) >= 1e-6, abs(scalingFactor) <= 1e6 else {
            return "scaling_factor is \(scalingFactor); it must be a finite number with magnitude in [1e-06, 1e6]"
        }
        return nil
    }
}

/// diffusers `AutoencoderTinyBlock` (unet_2d_blocks.py) with equal widths: ReLU(conv₄(ReLU(conv₂(ReLU(conv₀(x))))) + x).
struct AutoencoderTinyBlock: Sendable {
    let convs: [Conv2d]

    init(_ scope: WeightScope, channels: Int, precision: Precision) throws {
        convs = try [0, 2, 4].map {
            try Conv2d(scope.scope("conv"), "\($0)", in: channels, out: channels, kernel: 3, padding: .symmetric(1), precision: precision)
        }
    }

    /// x [B, C, H, W] → [B, C, H, W].
    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
        let h = convs[2](compute.relu(convs[1](compute.relu(convs[0](x, compute)), compute)), compute)
        return compute.relu(compute.add(h, x))
    }
}

/// One entry of EncoderTiny's or DecoderTiny's `layers` (an nn.Sequential), whose index is its weight key.
enum TinyLayer: Sendable {
    case conv(Conv2d)
    case block(AutoencoderTinyBlock)
    case relu
    case upsample

    func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
        switch self {
        case let .conv(conv): return conv(x, compute)
        case let .block(block): return block(x, compute)
        case .relu: return compute.relu(x)
        case .upsample: return compute.upsampleNearest2x(x)
        }
    }
}

/// diffusers `AutoencoderTiny` (autoencoder_tiny.py; vae.py `EncoderTiny`, `DecoderTiny`): TAESD, 3×3 convs and ReLUs,
/// no norms, no attention. Its weights are read under `encoder.layers.N` / `decoder.layers.N` (a diffusers folder) or
/// under `N` (taesd.py's single files, whose decoder indices are one higher: `layerOffset`).
public struct AutoencoderTiny: Sendable {
    public let config: AutoencoderTinyConfig
    /// Where the weights came from (messages, metadata).
    public let source: String
    let encoderLayers: [TinyLayer]?
    let decoderLayers: [TinyLayer]

    /// `encoder` nil loads the decoder alone (previews and drafts need no encoder).
    public init(config: AutoencoderTinyConfig, encoder: (layers: WeightScope, layerOffset: Int)?,
                decoder: (layers: WeightScope, layerOffset: Int), precision: Precision, source: String) throws {
        if let problem = config.problem { throw ModelError.invalidConfig(path: source, reason: problem) }
        self.config = config
        self.source = source
        encoderLayers = try encoder.map { try Self.encoderLayers(config, $0.layers, offset: $0.layerOffset, precision: precision) }
        decoderLayers = try Self.decoderLayers(config, decoder.layers, offset: decoder.layerOffset, precision: precision)
    }

    /// EncoderTiny.__init__: per level a conv (stride 2 and no bias after the first), then its blocks; a last conv to the latents.
    static func encoderLayers(_ c: AutoencoderTinyConfig, _ scope: WeightScope, offset: Int, precision: Precision) throws -> [TinyLayer] {
        var layers: [TinyLayer] = []
        func name() -> String { "\(layers.count + offset)" }
        for (level, blocks) in c.numEncoderBlocks.enumerated() {
            let width = c.encoderBlockOutChannels[level]
            layers.append(.conv(level == 0
                ? try Conv2d(scope, name(), in: c.inChannels, out: width, kernel: 3, padding: .symmetric(1), precision: precision)
                : try Conv2d(scope, name(), in: width, out: width, kernel: 3, stride: 2, padding: .symmetric(1), bias: false, precision: precision)))
            for _ in 0..<blocks { layers.append(.block(try AutoencoderTinyBlock(scope.scope(name()), channels: width, precision: precision))) }
        }
        let top = c.encoderBlockOutChannels[c.encoderBlockOutChannels.count - 1]
        layers.append(.conv(try Conv2d(scope, name(), in: top, out: c.latentChannels, kernel: 3, padding: .symmetric(1), precision: precision)))
        return layers
    }

    /// DecoderTiny.__init__: a conv and a ReLU, then per level its blocks, an upsampling and a bias-free conv (the last
    /// level: no upsampling, and a conv with bias to the output channels).
    static func decoderLayers(_ c: AutoencoderTinyConfig, _ scope: WeightScope, offset: Int, precision: Precision) throws -> [TinyLayer] {
        var layers: [TinyLayer] = []
        func name() -> String { "\(layers.count + offset)" }
        layers.append(.conv(try Conv2d(scope, name(), in: c.latentChannels, out: c.decoderBlockOutChannels[0], kernel: 3,
                                       padding: .symmetric(1), precision: precision)))
        layers.append(.relu)
        for (level, blocks) in c.numDecoderBlocks.enumerated() {
            let width = c.decoderBlockOutChannels[level], last = level == c.numDecoderBlocks.count - 1
            for _ in 0..<blocks { layers.append(.block(try AutoencoderTinyBlock(scope.scope(name()), channels: width, precision: precision))) }
            if !last { layers.append(.upsample) }
            layers.append(.conv(try Conv2d(scope, name(), in: width, out: last ? c.outChannels : width, kernel: 3,
                                           padding: .symmetric(1), bias: last, precision: precision)))
        }
        return layers
    }

    public var hasEncoder: Bool { encoderLayers != nil }

    /// Latents in the transformer's space [B, latent, h, w] → images in [−1, 1]-ish [B, out, h·f, w·f]: the pipeline's
    /// `latents / scaling_factor + shift_factor`, DecoderTiny's clamp tanh(x / 3)·3, its layers, then [0, 1] → [−1, 1].
    public func decode(_ latents: Tensor, compute: Compute, isCancelled: () -> Bool = { false }) throws -> Tensor {
        guard latents.rank == 4, latents.dim(1) == config.latentChannels else {
            throw ModelError.unsupported(path: source, reason: "TAESD takes [B, \(config.latentChannels), h, w] latents, not \(latents.shape)")
        }
        let (scale, shift) = (config.scalingFactor, config.shiftFactor)
        var h = Tensor(shape: latents.shape, data: latents.data.map { value in
            let unscaled = value / scale + shift
            return Foundation.tanh(unscaled / 3) * 3
        })
        for layer in decoderLayers {
            if isCancelled() { throw CancellationError() }
            h = layer(h, compute)
        }
        return Tensor(shape: h.shape, data: h.data.map { $0 * 2 - 1 })
    }

    /// Images [B, in, H, W] in [−1, 1] → latents [B, latent, ⌈H/f⌉, ⌈W/f⌉] (EncoderTiny: [−1, 1] → [0, 1], then its layers).
    public func encode(_ images: Tensor, compute: Compute) throws -> Tensor {
        guard let encoderLayers else { throw ModelError.unsupported(path: source, reason: "TAESD was loaded without its encoder") }
        guard images.rank == 4, images.dim(1) == config.inChannels else {
            throw ModelError.unsupported(path: source, reason: "TAESD encodes [B, \(config.inChannels), H, W] images, not \(images.shape)")
        }
        var h = Tensor(shape: images.shape, data: images.data.map { ($0 + 1) / 2 })
        for layer in encoderLayers { h = layer(h, compute) }
        return h
    }
}
