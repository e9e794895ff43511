import SafeTensors

/// Component configs read from weight shapes (diffusers names) when a checkpoint comes without config files.
/// What shapes cannot tell is SD3's: 64-wide attention heads, CLIP-L's quick_gelu, T5's 128-token max distance,
/// the VAE's 32 norm groups and latent scale/shift (the config.json files of
/// stabilityai/stable-diffusion-3-medium-diffusers).
public enum HeaderConfigs {
    /// The shape of `key`, which must have `rank` dimensions, each at least 1 (sizes below divide by them).
    static func shape(_ w: MappedWeights, _ key: String, _ component: SD3Component, rank: Int = 2) throws -> [Int] {
        guard let shape = w.shape(of: key) else { throw SingleFileError.cannotDerive(path: w.source, component: component, reason: "no '\(key)'") }
        guard shape.count == rank, shape.allSatisfy({ $0 > 0 }) else {
            throw SingleFileError.cannotDerive(path: w.source, component: component, reason: "'\(key)' has shape \(shape), expected \(rank) positive sizes")
        }
        return shape
    }

    /// Indices `i` for which some key starts with `prefix` + "i.".
    static func indices(_ w: MappedWeights, _ prefix: String) -> [Int] {
        Set(w.keys.compactMap { key -> Int? in
            guard key.hasPrefix(prefix) else { return nil }
            return Int(key.dropFirst(prefix.count).prefix { $0 != "." })
        }).sorted()
    }

    /// SD3's 64-wide heads; a width 64 does not divide (test-sized models) gets one head.
    static func headWidth(_ width: Int) -> Int { width % 64 == 0 ? 64 : width }

    public static func transformer(_ w: MappedWeights) throws -> SD3TransformerConfig {
        let c = SD3Component.transformer
        let context = try shape(w, "context_embedder.weight", c)  // [D, joint_attention_dim]
        let patch = try shape(w, "pos_embed.proj.weight", c, rank: 4)  // [D, C_in, p, p]
        let table = try shape(w, "pos_embed.pos_embed", c, rank: 3)  // [1, M², D]
        let out = try shape(w, "proj_out.weight", c)  // [p²·C_out, D]
        let pooled = try shape(w, "time_text_embed.text_embedder.linear_1.weight", c)  // [D, pooled]
        let width = context[0], p = patch[2]
        let side = Int(Double(table[1]).squareRoot().rounded())
        guard side * side == table[1] else {
            throw SingleFileError.cannotDerive(path: w.source, component: c, reason: "width \(width) or position table \(table) is not SD3-shaped")
        }
        let layers = indices(w, "transformer_blocks.")
        let dual = layers.filter { w.contains("transformer_blocks.\($0).attn2.to_q.weight") }
        return SD3TransformerConfig(sampleSize: 128, patchSize: p, inChannels: patch[1], outChannels: out[0] / (p * p),
                                    numLayers: layers.count, attentionHeadDim: headWidth(width), numAttentionHeads: width / headWidth(width),
                                    jointAttentionDim: context[1], captionProjectionDim: width, pooledProjectionDim: pooled[1],
                                    posEmbedMaxSize: side, dualAttentionLayers: dual,
                                    qkNorm: w.contains("transformer_blocks.0.attn.norm_q.weight") ? "rms_norm" : nil)
    }

    public static func vae(_ w: MappedWeights) throws -> AutoencoderKLConfig {
        let c = SD3Component.vae
        var config = AutoencoderKLConfig.sd3
        let blocks = indices(w, "decoder.up_blocks.")
        // Encoder and decoder mirror each other; the decoder is always loaded, so read it.
        config.blockOutChannels = try blocks.reversed().map { try shape(w, "decoder.up_blocks.\($0).resnets.0.conv1.weight", c, rank: 4)[0] }
        config.layersPerBlock = indices(w, "decoder.up_blocks.0.resnets.").count - 1
        config.latentChannels = try shape(w, "decoder.conv_in.weight", c, rank: 4)[1]
        config.outChannels = try shape(w, "decoder.conv_out.weight", c, rank: 4)[0]
        config.inChannels = w.contains("encoder.conv_in.weight") ? try shape(w, "encoder.conv_in.weight", c, rank: 4)[1] : 3
        config.midBlockAddAttention = w.contains("decoder.mid_block.attentions.0.to_q.weight")
        config.useQuantConv = w.contains("quant_conv.weight")
        config.usePostQuantConv = w.contains("post_quant_conv.weight")
        config.shiftFactor = 0.0609
        config.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: blocks.count)
        config.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: blocks.count)
        return config
    }

    public static func clip(_ w: MappedWeights, _ c: SD3Component) throws -> CLIPTextConfig {
        let tokens = try shape(w, "text_model.embeddings.token_embedding.weight", c)  // [vocab, D]
        let positions = try shape(w, "text_model.embeddings.position_embedding.weight", c)  // [77, D]
        let fc1 = try shape(w, "text_model.encoder.layers.0.mlp.fc1.weight", c)  // [I, D]
        let projection = try shape(w, "text_projection.weight", c)  // [P, D]
        let width = tokens[1]
        return CLIPTextConfig(vocabSize: tokens[0], hiddenSize: width, intermediateSize: fc1[0], projectionDim: projection[0],
                              numHiddenLayers: indices(w, "text_model.encoder.layers.").count, numAttentionHeads: width / headWidth(width),
                              maxPositionEmbeddings: positions[0], hiddenAct: c == .textEncoder ? "quick_gelu" : "gelu",
                              layerNormEps: 1e-5, eosTokenId: 49407)
    }

    public static func t5(_ w: MappedWeights) throws -> T5Config {
        let c = SD3Component.textEncoder3
        let shared = try shape(w, "shared.weight", c)  // [vocab, d_model]
        let bias = try shape(w, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", c)  // [buckets, heads]
        let q = try shape(w, "encoder.block.0.layer.0.SelfAttention.q.weight", c)  // [heads·d_kv, d_model]
        let ff = try shape(w, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", c)  // [d_ff, d_model]
        return T5Config(vocabSize: shared[0], dModel: shared[1], dKv: q[0] / bias[1], dFf: ff[0],
                        numLayers: indices(w, "encoder.block.").count, numHeads: bias[1], relativeAttentionNumBuckets: bias[0],
                        relativeAttentionMaxDistance: 128, layerNormEpsilon: 1e-6, feedForwardProj: "gated-gelu")
    }

    /// "SD3 Medium", "SD3.5 Medium", "SD3.5 Large", or a description of an other-sized MMDiT.
    public static func familyName(_ config: SD3TransformerConfig) -> String {
        var generic = config
        generic.sampleSize = 128
        if generic == .sd3Medium { return "SD3 Medium" }
        if generic == .sd35Medium { return "SD3.5 Medium" }
        if generic == .sd35Large { return "SD3.5 Large" }
        let version = config.qkNorm == nil ? "SD3" : "SD3.5"
        return "\(version)-style MMDiT (\(config.numLayers) layers, width \(config.width))"
    }
}
