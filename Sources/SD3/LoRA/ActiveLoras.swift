import Tensors

/// One model's run-time LoRA pairs (a CLIP encoder's or the transformer's), by the weight key of the linear layer they
/// sit beside (`transformer_blocks.0.attn.to_q.weight`). The model's forward takes this value and each `Linear` looks
/// up its own pairs, so the model itself holds no LoRA state.
public struct LayerLoras: Sendable {
    let pairs: [String: [LowRankPair]]

    public static let none = LayerLoras(pairs: [:])

    /// The pairs beside the layer whose weight is `key`, in the order the LoRAs were listed; [] for none.
    subscript(key: String) -> [LowRankPair] { pairs.isEmpty ? [] : pairs[key] ?? [] }
}

/// The LoRAs one generation applies at run time (`LoraMode.runTime`, y = x·Wᵀ + Σ s·(x·Aᵀ)·Bᵀ): an immutable value
/// that the pipeline passes into the text encoders' and the transformer's forward calls. Changing LoRAs between runs
/// is passing another value; `none` (or strengths of 0) runs the untouched base weights, so the base image comes back
/// bit for bit.
public struct ActiveLoras: Sendable {
    /// The files and strengths as chosen, in order; strengths as given (0.9, not Float(0.9) widened back to
    /// 0.8999999761581421), for the metadata.
    public let list: [(file: LoraFile, strength: Double)]
    /// Each component's pairs, scaled by strength · the file's alpha / r; a LoRA at strength 0 adds none.
    let components: [SD3Component: LayerLoras]

    public static let none = ActiveLoras([])

    public init(_ list: [(file: LoraFile, strength: Double)]) {
        self.list = list
        var pairs: [SD3Component: [String: [LowRankPair]]] = [:]
        for (file, strength) in list where Float(strength) != 0 {
            for (component, filePairs) in file.pairs {
                for (key, pair) in filePairs {
                    pairs[component, default: [:]][key, default: []].append(
                        LowRankPair(down: Weight(pair.down, format: .fp32), up: Weight(pair.up, format: .fp32), scale: Float(strength) * pair.scale))
                }
            }
        }
        components = pairs.mapValues { LayerLoras(pairs: $0) }
    }

    /// The files `choices` name, read; a file of `previous` that has not changed on disk since it was read is reused
    /// (a file written again under the same path, as the studio's training panel rewrites its output, is read again).
    public static func read(_ choices: [LoraChoice], reusing previous: ActiveLoras = .none) throws -> ActiveLoras {
        if let bad = choices.first(where: { !($0.strength.isFinite && GenerationLimits.loraStrength.contains($0.strength)) }) {
            throw LoraError.strengthOutOfRange(path: bad.path, strength: bad.strength)
        }
        let known = Dictionary(previous.list.map { ($0.file.path, $0.file) }, uniquingKeysWith: { a, _ in a })
            .filter { path, file in file.stamp != nil && file.stamp == LoraFile.stamp(path: path) }
        return ActiveLoras(try choices.map { (try known[$0.path] ?? LoraFile(path: $0.path), $0.strength) })
    }

    public var isEmpty: Bool { list.isEmpty }

    /// The pairs of `component`'s model.
    public subscript(component: SD3Component) -> LayerLoras { components[component] ?? .none }

    /// What the text encoders' outputs depend on, for the prompt cache's key: each LoRA with text-encoder pairs and a
    /// non-zero strength, in order, by its path, its file's identity on disk, its content hash and its strength.
    /// Equal keys give equal embeddings; a LoRA on the transformer only leaves the key, and the cached embeddings, as
    /// they are.
    public var textEncoderKey: String {
        list.filter { file, strength in
            Float(strength) != 0 && (file.pairs[.textEncoder] != nil || file.pairs[.textEncoder2] != nil)
        }
        .map { file, strength in "\(file.path)\u{2}\(file.stamp.map { "\($0)" } ?? "-")\u{2}\(file.shortHash)\u{2}\(strength)" }
        .joined(separator: "\u{1}")
    }

    /// Throws for the first pair of `component` that names no layer of `layers` (weight key → [out, in], a model's
    /// `loraLayers`) or has another shape, naming the file and the key. Run before a model runs with these LoRAs (or,
    /// merged, right after it is built), so a bad file fails the run before anything is computed with it.
    public func check(_ component: SD3Component, layers: [String: [Int]]) throws {
        for (file, _) in list {
            for (key, pair) in (file.pairs[component] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let found = [pair.up.shape[0], pair.down.shape[1]]
                guard let expected = layers[key] else {
                    throw LoraError.matchesNothing(path: file.path, key: pair.sourceKey, target: component.rawValue + "." + key)
                }
                if expected != found {
                    throw LoraError.shapeMismatch(path: file.path, key: pair.sourceKey, target: component.rawValue + "." + key,
                                                  expected: expected, found: found,
                                                  model: component == .transformer ? LoraKeyMap.modelWithWidth(found[1]) : nil)
                }
            }
        }
    }
}
