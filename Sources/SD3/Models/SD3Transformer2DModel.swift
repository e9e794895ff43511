import SafeTensors
import Tensors

/// diffusers `SD3Transformer2DModel` config (transformer/config.json).
public struct SD3TransformerConfig: Decodable, Sendable, Equatable {
    public var sampleSize: Int
    public var patchSize: Int
    public var inChannels: Int
    public var outChannels: Int
    public var numLayers: Int
    public var attentionHeadDim: Int
    public var numAttentionHeads: Int
    public var jointAttentionDim: Int
    public var captionProjectionDim: Int
    public var pooledProjectionDim: Int
    public var posEmbedMaxSize: Int
    public var dualAttentionLayers: [Int]
    public var qkNorm: String?

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size", patchSize = "patch_size", inChannels = "in_channels", outChannels = "out_channels"
        case numLayers = "num_layers", attentionHeadDim = "attention_head_dim", numAttentionHeads = "num_attention_heads"
        case jointAttentionDim = "joint_attention_dim", captionProjectionDim = "caption_projection_dim"
        case pooledProjectionDim = "pooled_projection_dim", posEmbedMaxSize = "pos_embed_max_size"
        case dualAttentionLayers = "dual_attention_layers", qkNorm = "qk_norm"
    }

    public init(sampleSize: Int, patchSize: Int, inChannels: Int, outChannels: Int, numLayers: Int, attentionHeadDim: Int,
                numAttentionHeads: Int, jointAttentionDim: Int, captionProjectionDim: Int, pooledProjectionDim: Int,
                posEmbedMaxSize: Int, dualAttentionLayers: [Int] = [], qkNorm: String? = nil) {
        self.sampleSize = sampleSize; self.patchSize = patchSize; self.inChannels = inChannels; self.outChannels = outChannels
        self.numLayers = numLayers; self.attentionHeadDim = attentionHeadDim; self.numAttentionHeads = numAttentionHeads
        self.jointAttentionDim = jointAttentionDim; self.captionProjectionDim = captionProjectionDim
        self.pooledProjectionDim = pooledProjectionDim; self.posEmbedMaxSize = posEmbedMaxSize
        self.dualAttentionLayers = dualAttentionLayers; self.qkNorm = qkNorm
    }

    /// diffusers' defaults (transformer_sd3.py) for keys a config leaves out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? 128
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? 2
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 16
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 16
        numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? 18
        attentionHeadDim = try c.decodeIfPresent(Int.self, forKey: .attentionHeadDim) ?? 64
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 18
        jointAttentionDim = try c.decodeIfPresent(Int.self, forKey: .jointAttentionDim) ?? 4096
        captionProjectionDim = try c.decodeIfPresent(Int.self, forKey: .captionProjectionDim) ?? 1152
        pooledProjectionDim = try c.decodeIfPresent(Int.self, forKey: .pooledProjectionDim) ?? 2048
        posEmbedMaxSize = try c.decodeIfPresent(Int.self, forKey: .posEmbedMaxSize) ?? 96
        dualAttentionLayers = try c.decodeIfPresent([Int].self, forKey: .dualAttentionLayers) ?? []
        qkNorm = try c.decodeIfPresent(String.self, forKey: .qkNorm)
    }

    public var width: Int { numAttentionHeads * attentionHeadDim }

    public static let sd3Medium = SD3TransformerConfig(sampleSize: 128, patchSize: 2, inChannels: 16, outChannels: 16, numLayers: 24,
                                                      attentionHeadDim: 64, numAttentionHeads: 24, jointAttentionDim: 4096,
                                                      captionProjectionDim: 1536, pooledProjectionDim: 2048, posEmbedMaxSize: 192)
    public static let sd35Medium = SD3TransformerConfig(sampleSize: 128, patchSize: 2, inChannels: 16, outChannels: 16, numLayers: 24,
                                                       attentionHeadDim: 64, numAttentionHeads: 24, jointAttentionDim: 4096,
                                                       captionProjectionDim: 1536, pooledProjectionDim: 2048, posEmbedMaxSize: 384,
                                                       dualAttentionLayers: Array(0...12), qkNorm: "rms_norm")
    public static let sd35Large = SD3TransformerConfig(sampleSize: 128, patchSize: 2, inChannels: 16, outChannels: 16, numLayers: 38,
                                                      attentionHeadDim: 64, numAttentionHeads: 38, jointAttentionDim: 4096,
                                                      captionProjectionDim: 2432, pooledProjectionDim: 2048, posEmbedMaxSize: 192,
                                                      qkNorm: "rms_norm")
}

/// diffusers `SD3Transformer2DModel` (transformer_sd3.py): the MMDiT that predicts the flow velocity.
public struct SD3Transformer2DModel: Sendable {
    public let config: SD3TransformerConfig
    let patchEmbed: PatchEmbed
    let timeTextEmbed: CombinedTimestepTextProjEmbeddings
    let contextEmbedder: Linear
    let blocks: [JointTransformerBlock]
    let normOut: AdaLayerNormContinuous
    let projOut: Linear

    public init(config: SD3TransformerConfig, weights: any WeightProvider, precision: Precision) throws {
        self.config = config
        let d = config.width, p = config.patchSize
        guard config.captionProjectionDim == d else {
            throw ModelError.unsupported(path: weights.source, reason: "caption_projection_dim \(config.captionProjectionDim) differs from heads × head_dim = \(d)")
        }
        guard config.qkNorm == nil || config.qkNorm == "rms_norm" else {
            throw ModelError.unsupported(path: weights.source, reason: "qk_norm '\(config.qkNorm!)' (expected rms_norm or none)")
        }
        let root = weights.scope("")
        patchEmbed = try PatchEmbed(weights.scope("pos_embed"), inChannels: config.inChannels, width: d, patchSize: p,
                                    maxSize: config.posEmbedMaxSize, precision: precision)
        timeTextEmbed = try CombinedTimestepTextProjEmbeddings(weights.scope("time_text_embed"), width: d,
                                                               pooledWidth: config.pooledProjectionDim, precision: precision)
        contextEmbedder = try Linear(root, "context_embedder", in: config.jointAttentionDim, out: d, precision: precision)
        blocks = try (0..<config.numLayers).map { i in
            try JointTransformerBlock(weights.scope("transformer_blocks.\(i)"), width: d, heads: config.numAttentionHeads,
                                      contextPreOnly: i == config.numLayers - 1,
                                      dualAttention: config.dualAttentionLayers.contains(i),
                                      qkNorm: config.qkNorm != nil, precision: precision)
        }
        normOut = try AdaLayerNormContinuous(root, "norm_out", width: d, precision: precision)
        projOut = try Linear(root, "proj_out", in: d, out: p * p * config.outChannels, precision: precision)
        try weights.requireAllUsed()
    }

    /// Puts every linear weight in the backend's preferred layout now (oneDNN packs bf16 weights), before the denoising
    /// loop: packed at their first product instead, they would be allocated between the first step's activations and
    /// fragment the memory the later steps reuse. `rows` is a typical row count of the products (tokens × batch).
    public func prepareWeights(rows: Int, compute: Compute) {
        for linear in linears { compute.prepare(linear.weight, rows: rows) }
    }

    /// Every linear layer.
    var linears: [Linear] {
        [contextEmbedder, normOut.linear, projOut] + timeTextEmbed.linears + blocks.flatMap(\.linears)
    }

    /// The layers a LoRA pair may sit beside, weight key → [out, in]: every linear layer and the patch embedding's
    /// kernel (flattened), for `ActiveLoras.check`.
    public var loraLayers: [String: [Int]] {
        Dictionary(uniqueKeysWithValues: (linears.map(\.loraLayer) + [patchEmbed.loraLayer]).map { ($0.key, $0.shape) })
    }

    /// latents [B, C, H, W], text [B, T, joint_attention_dim], pooled [B, pooled_projection_dim],
    /// timesteps [B] → velocity [B, C_out, H, W]. Blocks in `skipLayers` are not run (skip-layer guidance). `loras`:
    /// run-time LoRA pairs beside its layers (`ActiveLoras[.transformer]`).
    /// `isCancelled` is checked between blocks; when it returns true the forward throws `CancellationError`.
    public func callAsFunction(_ latents: Tensor, text: Tensor, pooled: Tensor, timesteps: [Float], skipLayers: Set<Int> = [],
                               compute: Compute, loras: LayerLoras = .none, isCancelled: () -> Bool = { false }) throws -> Tensor {
        let (batch, height, width) = (latents.dim(0), latents.dim(2), latents.dim(3))
        let p = config.patchSize, (h, w) = (height / p, width / p)
        precondition(latents.rank == 4 && latents.dim(1) == config.inChannels && height % p == 0 && width % p == 0,
                     "SD3Transformer2DModel: latents \(latents.shape) are not [B, \(config.inChannels), H, W] with H, W multiples of \(p)")
        precondition(h <= config.posEmbedMaxSize && w <= config.posEmbedMaxSize,
                     "SD3Transformer2DModel: \(h)×\(w) patches exceed the \(config.posEmbedMaxSize)² position table")
        precondition(text.shape == [batch, text.dim(1), config.jointAttentionDim] && pooled.shape == [batch, config.pooledProjectionDim]
                     && timesteps.count == batch, "SD3Transformer2DModel: conditioning shapes do not match the batch of \(batch)")
        var x = patchEmbed(latents, compute, loras)  // [B, N, D]
        let temb = timeTextEmbed(timesteps: timesteps, pooled: pooled, compute, loras)  // [B, D]
        let siluTemb = compute.silu(temb)
        var context = contextEmbedder(text, compute, loras)  // [B, T, D]
        for (index, block) in blocks.enumerated() where !skipLayers.contains(index) {
            if isCancelled() { throw CancellationError() }
            let (image, text) = block(x, context: context, siluTemb: siluTemb, compute, loras)
            x = image
            if let text { context = text }
        }
        let (scale, shift) = normOut(siluTemb, compute, loras)  // each [B, D]
        let y = projOut(compute.normModulate(x, shift: shift, scale: scale), compute, loras)  // [B, N, p²·C]
        // Unpatchify: out[b, c, p·row + py, p·col + px] = y[b, row·w + col, (py·p + px)·C + c].
        let channels = config.outChannels
        return y.reshaped([batch, h, w, p, p, channels]).permuted([0, 5, 1, 3, 2, 4]).reshaped([batch, channels, height, width])
    }
}
