import SafeTensors
import Tensors

/// transformers `CLIPTextConfig` fields the text model uses (text_encoder*/config.json).
public struct CLIPTextConfig: Decodable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var projectionDim: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var maxPositionEmbeddings: Int
    public var hiddenAct: String
    public var layerNormEps: Float
    public var eosTokenId: Int

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case projectionDim = "projection_dim", numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case eosTokenId = "eos_token_id"
    }

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, projectionDim: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, maxPositionEmbeddings: Int, hiddenAct: String, layerNormEps: Float, eosTokenId: Int) {
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.projectionDim = projectionDim; self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.hiddenAct = hiddenAct; self.layerNormEps = layerNormEps
        self.eosTokenId = eosTokenId
    }

    /// transformers' defaults for keys a config may leave out (configuration_clip.py).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 49408
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 512
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 2048
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? 512
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? 12
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 8
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 77
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "quick_gelu"
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
        eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? 49407
    }

    /// CLIP ViT-L/14's text tower as SD3 ships it (text_encoder; projection is the identity).
    public static let clipL = CLIPTextConfig(vocabSize: 49408, hiddenSize: 768, intermediateSize: 3072, projectionDim: 768,
                                             numHiddenLayers: 12, numAttentionHeads: 12, maxPositionEmbeddings: 77,
                                             hiddenAct: "quick_gelu", layerNormEps: 1e-5, eosTokenId: 49407)
    /// OpenCLIP ViT-bigG/14's text tower (text_encoder_2).
    public static let clipG = CLIPTextConfig(vocabSize: 49408, hiddenSize: 1280, intermediateSize: 5120, projectionDim: 1280,
                                             numHiddenLayers: 32, numAttentionHeads: 20, maxPositionEmbeddings: 77,
                                             hiddenAct: "gelu", layerNormEps: 1e-5, eosTokenId: 49407)
}

/// transformers `CLIPTextModelWithProjection` (modeling_clip.py): pre-LN transformer with a causal mask.
/// SD3 takes `hidden_states[-2]` (the output of the second-to-last layer, before the final norm) and
/// `text_embeds` (the final-normed state at the first end token, projected).
public struct CLIPTextModelWithProjection: Sendable {
    public struct Output: Sendable {
        /// hidden_states[-(clipSkip + 2)]: [B, L, D]
        public var hiddenState: Tensor
        /// text_embeds: [B, P]
        public var textEmbeds: Tensor
    }

    struct EncoderLayer: Sendable {
        let layerNorm1: LayerNorm, layerNorm2: LayerNorm
        let q: Linear, k: Linear, v: Linear, out: Linear
        let fc1: Linear, fc2: Linear
    }

    public let config: CLIPTextConfig
    let tokenEmbedding: Embedding
    let positionEmbedding: Tensor
    let layers: [EncoderLayer]
    let finalLayerNorm: LayerNorm
    let textProjection: Linear

    public init(config: CLIPTextConfig, weights: any WeightProvider, precision: Precision) throws {
        self.config = config
        let (d, i, eps) = (config.hiddenSize, config.intermediateSize, config.layerNormEps)
        guard ["quick_gelu", "gelu"].contains(config.hiddenAct) else {
            throw ModelError.unsupported(path: weights.source, reason: "CLIP hidden_act '\(config.hiddenAct)' (expected quick_gelu or gelu)")
        }
        guard d % config.numAttentionHeads == 0 else {
            throw ModelError.unsupported(path: weights.source, reason: "hidden_size \(d) does not split into \(config.numAttentionHeads) heads")
        }
        let model = weights.scope("text_model")
        tokenEmbedding = try Embedding(model.scope("embeddings"), "token_embedding.weight", count: config.vocabSize, width: d)
        positionEmbedding = try model.scope("embeddings").tensor("position_embedding.weight", shape: [config.maxPositionEmbeddings, d])
        layers = try (0..<config.numHiddenLayers).map { index in
            let layer = model.scope("encoder.layers.\(index)")
            let attention = layer.scope("self_attn")
            return EncoderLayer(
                layerNorm1: try LayerNorm(layer, "layer_norm1", width: d, eps: eps),
                layerNorm2: try LayerNorm(layer, "layer_norm2", width: d, eps: eps),
                q: try Linear(attention, "q_proj", in: d, out: d, precision: precision),
                k: try Linear(attention, "k_proj", in: d, out: d, precision: precision),
                v: try Linear(attention, "v_proj", in: d, out: d, precision: precision),
                out: try Linear(attention, "out_proj", in: d, out: d, precision: precision),
                fc1: try Linear(layer, "mlp.fc1", in: d, out: i, precision: precision),
                fc2: try Linear(layer, "mlp.fc2", in: i, out: d, precision: precision))
        }
        finalLayerNorm = try LayerNorm(model, "final_layer_norm", width: d, eps: eps)
        textProjection = try Linear(weights.scope(""), "text_projection", in: d, out: config.projectionDim, bias: false, precision: precision)
        // transformers ≥ 5 may also store position_ids buffers; they carry no weights.
        for key in weights.unusedKeys where key.hasSuffix("position_ids") { weights.markUsed(key) }
        try weights.requireAllUsed()
    }

    /// The layers a LoRA pair may sit beside, weight key → [out, in] (every linear layer), for `ActiveLoras.check`.
    public var loraLayers: [String: [Int]] {
        let linears = layers.flatMap { [$0.q, $0.k, $0.v, $0.out, $0.fc1, $0.fc2] } + [textProjection]
        return Dictionary(uniqueKeysWithValues: linears.map { ($0.loraLayer.key, $0.loraLayer.shape) })
    }

    /// ids: [B, L] with L ≤ max_position_embeddings; `clipSkip` nil means hidden_states[-2]. `loras`: run-time LoRA
    /// pairs beside its layers (`ActiveLoras[.textEncoder]` or `[.textEncoder2]`).
    public func callAsFunction(_ ids: [[Int]], clipSkip: Int? = nil, compute: Compute, loras: LayerLoras = .none) -> Output {
        let length = ids.first?.count ?? 0
        precondition(length > 0 && length <= config.maxPositionEmbeddings, "CLIP: \(length) tokens, at most \(config.maxPositionEmbeddings)")
        let skip = clipSkip ?? 0
        precondition(skip >= 0 && skip + 1 < config.numHiddenLayers + 1, "CLIP: clip_skip \(skip) out of range")
        let d = config.hiddenSize
        var x = tokenEmbedding(ids)  // [B, L, D]
        let positions = Tensor(shape: [1, length, d], data: Array(positionEmbedding.data[0..<length * d]))
        x = compute.add(x, Tensor.concat(Array(repeating: positions, count: ids.count), axis: 0))
        // hidden_states[k] is the input to layer k; hidden_states[-(skip + 2)] = hidden_states[L - 1 - skip].
        let wanted = config.numHiddenLayers - 1 - skip
        var selected = x
        for (index, layer) in layers.enumerated() {
            if index == wanted { selected = x }
            x = forward(layer, x, compute, loras)
        }
        let normed = finalLayerNorm(x, compute)  // [B, L, D]
        // Pooled row: the first end token (transformers uses argmax(ids) when eos_token_id == 2, the legacy configs).
        var pooledRows = [Float]()
        for (b, row) in ids.enumerated() {
            let position = config.eosTokenId == 2 ? row.indices.max { row[$0] < row[$1] }! : (row.firstIndex(of: config.eosTokenId) ?? 0)
            pooledRows.append(contentsOf: normed.data[(b * length + position) * d..<(b * length + position + 1) * d])
        }
        let pooled = Tensor(shape: [ids.count, d], data: pooledRows)
        return Output(hiddenState: selected, textEmbeds: textProjection(pooled, compute, loras))
    }

    func forward(_ layer: EncoderLayer, _ x: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Tensor {
        let h = layer.layerNorm1(x, compute)  // [B, L, D]
        let attention = compute.attention(query: layer.q(h, compute, loras), key: layer.k(h, compute, loras), value: layer.v(h, compute, loras),
                                          heads: config.numAttentionHeads, mask: .causal)
        let x = compute.add(x, layer.out(attention, compute, loras))
        let m = layer.fc1(layer.layerNorm2(x, compute), compute, loras)  // [B, L, I]
        let activated = config.hiddenAct == "gelu" ? compute.gelu(m) : compute.quickGELU(m)
        return compute.add(x, layer.fc2(activated, compute, loras))
    }
}
