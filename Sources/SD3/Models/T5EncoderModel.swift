import Foundation
import SafeTensors
import Tensors

/// transformers `T5Config` fields the encoder uses (text_encoder_3/config.json).
public struct T5Config: Decodable, Sendable, Equatable {
    public var vocabSize: Int
    public var dModel: Int
    public var dKv: Int
    public var dFf: Int
    public var numLayers: Int
    public var numHeads: Int
    public var relativeAttentionNumBuckets: Int
    public var relativeAttentionMaxDistance: Int
    public var layerNormEpsilon: Float
    public var feedForwardProj: String

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", dModel = "d_model", dKv = "d_kv", dFf = "d_ff", numLayers = "num_layers"
        case numHeads = "num_heads", relativeAttentionNumBuckets = "relative_attention_num_buckets"
        case relativeAttentionMaxDistance = "relative_attention_max_distance", layerNormEpsilon = "layer_norm_epsilon"
        case feedForwardProj = "feed_forward_proj"
    }

    public init(vocabSize: Int, dModel: Int, dKv: Int, dFf: Int, numLayers: Int, numHeads: Int,
                relativeAttentionNumBuckets: Int, relativeAttentionMaxDistance: Int, layerNormEpsilon: Float, feedForwardProj: String) {
        self.vocabSize = vocabSize; self.dModel = dModel; self.dKv = dKv; self.dFf = dFf; self.numLayers = numLayers
        self.numHeads = numHeads; self.relativeAttentionNumBuckets = relativeAttentionNumBuckets
        self.relativeAttentionMaxDistance = relativeAttentionMaxDistance; self.layerNormEpsilon = layerNormEpsilon
        self.feedForwardProj = feedForwardProj
    }

    /// transformers' defaults for keys a config may leave out (configuration_t5.py).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 32128
        dModel = try c.decodeIfPresent(Int.self, forKey: .dModel) ?? 512
        dKv = try c.decodeIfPresent(Int.self, forKey: .dKv) ?? 64
        dFf = try c.decodeIfPresent(Int.self, forKey: .dFf) ?? 2048
        numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? 6
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? 8
        relativeAttentionNumBuckets = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionNumBuckets) ?? 32
        relativeAttentionMaxDistance = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionMaxDistance) ?? 128
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-6
        feedForwardProj = try c.decodeIfPresent(String.self, forKey: .feedForwardProj) ?? "relu"
    }

    /// google/t5-v1_1-xxl's encoder, SD3's text_encoder_3 (4.76 B parameters).
    public static let t5XXL = T5Config(vocabSize: 32128, dModel: 4096, dKv: 64, dFf: 10240, numLayers: 24, numHeads: 64,
                                       relativeAttentionNumBuckets: 32, relativeAttentionMaxDistance: 128,
                                       layerNormEpsilon: 1e-6, feedForwardProj: "gated-gelu")
}

/// transformers `T5EncoderModel` (modeling_t5.py), v1.1 flavour: RMS norms without bias, unscaled attention
/// scores plus a relative position bias owned by block 0 and shared by every block, gated-GELU (tanh) MLP.
public struct T5EncoderModel: Sendable {
    struct Block: Sendable {
        let attentionNorm: Tensor, q: Linear, k: Linear, v: Linear, o: Linear
        /// gated-gelu: gelu_tanh(wi_0·x) ⊙ wi_1·x; relu (T5DenseActDense): relu(wi·x), with `wi` in `wi0` and no `wi1`.
        let feedForwardNorm: Tensor, wi0: Linear, wi1: Linear?, wo: Linear
    }

    public let config: T5Config
    let shared: Embedding
    let relativeAttentionBias: Tensor  // [buckets, heads]
    let blocks: [Block]
    let finalLayerNorm: Tensor

    /// `int8`: the projections are stored weight-only int8 with per-row scales (`--t5 int8`), a quarter of
    /// their fp32 size, and multiplied in fp32; otherwise they follow `precision`.
    public init(config: T5Config, weights: any WeightProvider, precision: Precision, int8: Bool = false) throws {
        self.config = config
        let format: WeightFormat = int8 ? .int8 : (precision == .bf16 ? .bf16 : .fp32)
        // SD3's T5 v1.1 is gated-gelu; the original T5 (and diffusers' test pipelines' tiny-random-t5) is relu.
        guard config.feedForwardProj == "gated-gelu" || config.feedForwardProj == "relu" else {
            throw ModelError.unsupported(path: weights.source, reason: "T5 feed_forward_proj '\(config.feedForwardProj)' (gated-gelu or relu)")
        }
        let gated = config.feedForwardProj == "gated-gelu"
        let (d, inner, ff) = (config.dModel, config.numHeads * config.dKv, config.dFf)
        shared = try Embedding(weights.scope(""), "shared.weight", count: config.vocabSize, width: d)
        // encoder.embed_tokens.weight is tied to shared.weight; some files store both.
        if weights.contains("encoder.embed_tokens.weight") { weights.markUsed("encoder.embed_tokens.weight") }
        let encoder = weights.scope("encoder")
        relativeAttentionBias = try encoder.tensor("block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                                                   shape: [config.relativeAttentionNumBuckets, config.numHeads])
        blocks = try (0..<config.numLayers).map { index in
            let attention = encoder.scope("block.\(index).layer.0")
            let feedForward = encoder.scope("block.\(index).layer.1")
            let projections = attention.scope("SelfAttention")
            let mlp = feedForward.scope("DenseReluDense")
            return Block(
                attentionNorm: try attention.tensor("layer_norm.weight", shape: [d]),
                q: try Linear(projections, "q", in: d, out: inner, bias: false, format: format),
                k: try Linear(projections, "k", in: d, out: inner, bias: false, format: format),
                v: try Linear(projections, "v", in: d, out: inner, bias: false, format: format),
                o: try Linear(projections, "o", in: inner, out: d, bias: false, format: format),
                feedForwardNorm: try feedForward.tensor("layer_norm.weight", shape: [d]),
                wi0: try Linear(mlp, gated ? "wi_0" : "wi", in: d, out: ff, bias: false, format: format),
                wi1: gated ? try Linear(mlp, "wi_1", in: d, out: ff, bias: false, format: format) : nil,
                wo: try Linear(mlp, "wo", in: ff, out: d, bias: false, format: format))
        }
        finalLayerNorm = try encoder.tensor("final_layer_norm.weight", shape: [d])
        try weights.requireAllUsed()
    }

    /// ids [B, L] → last_hidden_state [B, L, d_model]. No attention mask: SD3 attends to padding too. No LoRA layout
    /// targets T5 (`LoraKeyMap.prefixes`), so its layers run without pairs.
    public func callAsFunction(_ ids: [[Int]], compute: Compute) -> Tensor {
        let length = ids.first?.count ?? 0
        precondition(length > 0, "T5: no tokens")
        let eps = config.layerNormEpsilon
        let bias = positionBias(length: length)  // [H, L, L]
        var x = shared(ids)  // [B, L, D]
        for block in blocks {
            let h = compute.rmsNorm(x, weight: block.attentionNorm, eps: eps)
            let attention = compute.attention(query: block.q(h, compute, .none), key: block.k(h, compute, .none), value: block.v(h, compute, .none),
                                              heads: config.numHeads, scale: 1, mask: .bias(bias))  // [B, L, H·dkv]
            x = compute.add(x, block.o(attention, compute, .none))
            let f = compute.rmsNorm(x, weight: block.feedForwardNorm, eps: eps)
            let hidden: Tensor  // [B, L, F]
            if let wi1 = block.wi1 {
                hidden = compute.mul(compute.gelu(block.wi0(f, compute, .none), approximation: .tanh), wi1(f, compute, .none))
            } else {
                hidden = compute.relu(block.wi0(f, compute, .none))
            }
            x = compute.add(x, block.wo(hidden, compute, .none))
        }
        return compute.rmsNorm(x, weight: finalLayerNorm, eps: eps)
    }

    /// bias[h, i, j] = table[bucket(j − i), h] (T5Attention.compute_bias, bidirectional).
    func positionBias(length: Int) -> Tensor {
        let heads = config.numHeads
        var data = [Float](repeating: 0, count: heads * length * length)
        for i in 0..<length {
            for j in 0..<length {
                let bucket = T5EncoderModel.relativePositionBucket(j - i, buckets: config.relativeAttentionNumBuckets,
                                                                   maxDistance: config.relativeAttentionMaxDistance)
                for h in 0..<heads { data[(h * length + i) * length + j] = relativeAttentionBias.data[bucket * heads + h] }
            }
        }
        return Tensor(shape: [heads, length, length], data: data)
    }

    /// T5Attention._relative_position_bucket with bidirectional=True. The logarithmic part is computed in
    /// float32 like torch (log of a float32 tensor, divided by a float32 scalar) and truncated toward zero.
    public static func relativePositionBucket(_ relativePosition: Int, buckets: Int, maxDistance: Int) -> Int {
        let half = buckets / 2
        var bucket = relativePosition > 0 ? half : 0
        let n = abs(relativePosition)
        let maxExact = half / 2
        if n < maxExact { return bucket + n }
        let ratio = Float(Foundation.log(Float(n) / Float(maxExact)))
        let scale = Float(Foundation.log(Double(maxDistance) / Double(maxExact)))
        let large = maxExact + Int(ratio / scale * Float(half - maxExact))
        bucket += min(large, half - 1)
        return bucket
    }
}
