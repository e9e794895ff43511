import SafeTensors
import Synchronization
import Tensors

/// Whether a checkpoint holds exactly the weights its model fetches, without reading any: the model is built at
/// width 1–2 from a provider that knows only the checkpoint's key names and hands out zeros of whatever shape is
/// asked. Which keys a model fetches depends on its depth and options (layers, dual attention, qk norm, where VAE
/// channels change), never on its widths, so a missing key is the model's own missing-key error and a stray one its
/// unused-keys error, for a few kilobytes at any model size. (Shapes are checked when the folder is loaded.)
enum StructureCheck {
    final class KeysOnly: WeightProvider {
        let source: String
        private let keys: Set<String>
        private let used = Mutex<Set<String>>([])

        init(_ weights: MappedWeights) {
            source = weights.source
            keys = Set(weights.keys)
        }

        func contains(_ key: String) -> Bool { keys.contains(key) }

        func tensor(_ key: String, shape: [Int]) throws(SafeTensorsError) -> Tensor {
            guard keys.contains(key) else { throw .missingKey(path: source, key: key) }
            used.withLock { _ = $0.insert(key) }
            return Tensor(zeros: shape)
        }

        func markUsed(_ key: String) { used.withLock { _ = $0.insert(key) } }

        var unusedKeys: [String] {
            let fetched = used.withLock { $0 }
            return keys.filter { !fetched.contains($0) }.sorted()
        }
    }

    /// Builds `component` of `source` at minimal widths from `weights`' key names.
    static func check(_ component: SD3Component, _ weights: MappedWeights, source: ModelSource) throws {
        let keys = KeysOnly(weights)
        switch component {
        case .transformer:
            var c = try source.transformerConfig()
            (c.patchSize, c.inChannels, c.outChannels, c.attentionHeadDim, c.numAttentionHeads) = (1, 1, 1, 1, 2)
            (c.jointAttentionDim, c.captionProjectionDim, c.pooledProjectionDim, c.posEmbedMaxSize) = (2, 2, 2, 1)
            _ = try SD3Transformer2DModel(config: c, weights: keys, precision: .fp32)
        case .vae:
            var c = try source.vaeConfig()
            // Each distinct width becomes its rank: where a block's width changes (a shortcut conv) stays the same.
            let ranks = Dictionary(uniqueKeysWithValues: Set(c.blockOutChannels).sorted().enumerated().map { ($1, $0 + 1) })
            c.blockOutChannels = c.blockOutChannels.map { ranks[$0] ?? 1 }
            (c.normNumGroups, c.latentChannels, c.inChannels, c.outChannels) = (1, 1, 1, 1)
            _ = try AutoencoderKL(config: c, weights: keys, precision: .fp32, withEncoder: true)
        case .textEncoder, .textEncoder2:
            var c = try source.clipConfig(component)
            (c.hiddenSize, c.intermediateSize, c.projectionDim, c.numAttentionHeads) = (2, 2, 2, 1)
            _ = try CLIPTextModelWithProjection(config: c, weights: keys, precision: .fp32)
        case .textEncoder3:
            var c = try source.t5Config()
            (c.dModel, c.dKv, c.dFf, c.numHeads) = (2, 1, 2, 1)
            _ = try T5EncoderModel(config: c, weights: keys, precision: .fp32)
        }
    }
}
