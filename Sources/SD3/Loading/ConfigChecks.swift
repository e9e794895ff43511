/// A config decoded from a file (or read from a checkpoint's shapes), checked before anything is built from it: every
/// count and size positive and small enough that products and allocations cannot overflow, every divisor non-zero and
/// dividing what it must, every float finite. The limits are far above any released SD3 model's.
public protocol CheckedConfig {
    /// nil when the config can be built, else the first problem, naming the key and its value.
    var problem: String? { get }
}

/// The checks the configs share: each returns a line naming the key and the value it found.
enum ConfigCheck {
    static func count(_ key: String, _ value: Int, _ range: ClosedRange<Int>) -> String? {
        range.contains(value) ? nil : "\(key) is \(value); it must be between \(range.lowerBound) and \(range.upperBound)"
    }

    static func divides(_ key: String, _ divisor: Int, _ what: String, _ value: Int) -> String? {
        divisor > 0 && value % divisor == 0 ? nil : "\(key) \(divisor) does not divide \(what) \(value)"
    }

    static func positive<F: BinaryFloatingPoint>(_ key: String, _ value: F, max: F = 1e6) -> String? {
        value.isFinite && value > 0 && value <= max ? nil : "\(key) is \(value); it must be a finite number in (0, \(max)]"
    }

    static func finite<F: BinaryFloatingPoint>(_ key: String, _ value: F, magnitude: F = 1e6) -> String? {
        value.isFinite && abs(value) <= magnitude ? nil : "\(key) is \(value); it must be a finite number within ±\(magnitude)"
    }

    /// The first problem among `checks`, run in order: a later check may rely on an earlier one (no product of
    /// unchecked sizes, no range built on an unchecked bound).
    static func first(_ checks: () -> String?...) -> String? {
        for check in checks { if let problem = check() { return problem } }
        return nil
    }

    /// Largest width, vocabulary and layer counts a config may name.
    static let width = 1...65_536
    static let vocabulary = 1...1_048_576
    static let layers = 1...512
}

extension SD3TransformerConfig: CheckedConfig {
    public var problem: String? {
        typealias C = ConfigCheck
        return C.first(
            { C.count("sample_size", sampleSize, 1...4096) },
            { C.count("patch_size", patchSize, 1...16) },
            { C.count("in_channels", inChannels, 1...1024) },
            { C.count("out_channels", outChannels, 1...1024) },
            { C.count("num_layers", numLayers, C.layers) },
            { C.count("attention_head_dim", attentionHeadDim, 1...1024) },
            { C.count("num_attention_heads", numAttentionHeads, 1...1024) },
            { C.count("num_attention_heads × attention_head_dim", numAttentionHeads * attentionHeadDim, C.width) },
            { C.count("joint_attention_dim", jointAttentionDim, C.width) },
            { C.count("caption_projection_dim", captionProjectionDim, C.width) },
            { C.count("pooled_projection_dim", pooledProjectionDim, C.width) },
            { C.count("pos_embed_max_size", posEmbedMaxSize, 1...1024) },
            { dualAttentionLayers.lazy.compactMap { C.count("dual_attention_layers entry", $0, 0...(numLayers - 1)) }.first })
    }
}

extension AutoencoderKLConfig: CheckedConfig {
    public var problem: String? {
        typealias C = ConfigCheck
        if let p = C.first({ C.count("in_channels", inChannels, 1...64) }, { C.count("out_channels", outChannels, 1...64) },
                           { C.count("latent_channels", latentChannels, 1...1024) }, { C.count("layers_per_block", layersPerBlock, 0...64) },
                           { C.count("block_out_channels' length", blockOutChannels.count, 1...8) },
                           { C.count("norm_num_groups", normNumGroups, 1...4096) }) { return p }
        for channels in blockOutChannels {
            if let p = C.count("block_out_channels entry", channels, C.width) { return p }
            if let p = C.divides("norm_num_groups", normNumGroups, "block_out_channels entry", channels) { return p }
        }
        // scaling_factor divides the latents on the way to the VAE: 0 or a subnormal turns them into Inf.
        if let p = C.finite("shift_factor", shiftFactor ?? 0) { return p }
        guard scalingFactor.isFinite, abs(scalingFactor) >= 1e-6, abs(scalingFactor) <= 1e6 else {
            return "scaling_factor is \(scalingFactor); it must be a finite number with magnitude in [1e-06, 1e6]"
        }
        return nil
    }
}

extension CLIPTextConfig: CheckedConfig {
    public var problem: String? {
        typealias C = ConfigCheck
        return C.first(
            { C.count("vocab_size", vocabSize, C.vocabulary) },
            { C.count("hidden_size", hiddenSize, C.width) },
            { C.count("intermediate_size", intermediateSize, 1...262_144) },
            { C.count("projection_dim", projectionDim, C.width) },
            { C.count("num_hidden_layers", numHiddenLayers, C.layers) },
            { C.count("num_attention_heads", numAttentionHeads, 1...1024) },
            { C.divides("num_attention_heads", numAttentionHeads, "hidden_size", hiddenSize) },
            // SD3 feeds every CLIP 77 tokens.
            { C.count("max_position_embeddings", maxPositionEmbeddings, 77...65_536) },
            { C.count("eos_token_id", eosTokenId, 0...(vocabSize - 1)) },
            { C.positive("layer_norm_eps", layerNormEps, max: 1) })
    }
}

extension T5Config: CheckedConfig {
    public var problem: String? {
        typealias C = ConfigCheck
        return C.first(
            { C.count("vocab_size", vocabSize, C.vocabulary) },
            { C.count("d_model", dModel, C.width) },
            { C.count("d_kv", dKv, 1...4096) },
            { C.count("d_ff", dFf, 1...262_144) },
            { C.count("num_layers", numLayers, C.layers) },
            { C.count("num_heads", numHeads, 1...1024) },
            { C.count("num_heads × d_kv", numHeads * dKv, C.width) },
            // The bucket formula takes log(n / (buckets / 4)) and log(max_distance / (buckets / 4)): both must be > 0.
            { C.count("relative_attention_num_buckets", relativeAttentionNumBuckets, 4...4096) },
            { C.count("relative_attention_max_distance", relativeAttentionMaxDistance, (relativeAttentionNumBuckets / 4 + 1)...1_048_576) },
            { C.positive("layer_norm_epsilon", layerNormEpsilon, max: 1) })
    }
}

extension FlowMatchEulerDiscreteScheduler.Config: CheckedConfig {
    public var problem: String? {
        typealias C = ConfigCheck
        return C.first(
            { C.count("num_train_timesteps", numTrainTimesteps, 2...1_000_000) },
            { GenerationLimits.shiftProblem("shift", shift) },
            { C.finite("base_shift", baseShift, magnitude: 100) },
            { C.finite("max_shift", maxShift, magnitude: 100) },
            { C.positive("base_image_seq_len", baseImageSeqLen) },
            { C.positive("max_image_seq_len", maxImageSeqLen) },
            // calculate_shift divides by their difference.
            { abs(maxImageSeqLen - baseImageSeqLen) >= 1 ? nil : "base_image_seq_len \(baseImageSeqLen) and max_image_seq_len \(maxImageSeqLen): they must differ by at least 1" },
            { shiftTerminal.flatMap { t in t.isFinite && t > 0 && t < 1 ? nil : "shift_terminal is \(t); it must be in (0, 1)" } })
    }
}
