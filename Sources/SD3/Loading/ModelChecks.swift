import Foundation
import SafeTensors

/// Checks a model as a whole before any weight is decoded: components that must agree do, and each component's
/// weights fit in memory once decoded (a config or header naming a billion layers is refused here, not by the
/// allocator's abort).
extension StableDiffusion3Pipeline {
    /// The VAE's latent channels are the transformer's input and output channels; CLIP-L ‖ CLIP-G's pooled
    /// projections are the transformer's pooled input (a mismatch would reach the model's shape preconditions).
    static func checkAgreement(_ transformer: SD3TransformerConfig, _ vae: AutoencoderKLConfig, source: ModelSource) throws {
        guard vae.latentChannels == transformer.inChannels, vae.latentChannels == transformer.outChannels else {
            throw ModelError.unsupported(path: source.path, reason: "the VAE's latent_channels \(vae.latentChannels) differ from the transformer's in_channels \(transformer.inChannels) / out_channels \(transformer.outChannels)")
        }
        guard source.has(.textEncoder), source.has(.textEncoder2) else { return }
        let (l, g) = (try source.clipConfig(.textEncoder), try source.clipConfig(.textEncoder2))
        guard l.projectionDim + g.projectionDim == transformer.pooledProjectionDim else {
            throw ModelError.unsupported(path: source.path, reason: "CLIP projection_dim \(l.projectionDim) + \(g.projectionDim) differs from the transformer's pooled_projection_dim \(transformer.pooledProjectionDim)")
        }
    }

    /// T5's tokenizer may not produce an id past the encoder's embedding rows (the embedding would index outside
    /// its table); the CLIP pair is checked by `PromptEncoder` itself.
    static func checkT5Vocabulary(_ encoder: PromptEncoder, source: ModelSource) throws {
        guard let t5 = encoder.t5, let tokenizer = encoder.tokenizers.tokenizer3, tokenizer.vocabularySize > t5.config.vocabSize else { return }
        throw ModelError.unsupported(path: source.path, reason: "the T5 tokenizer has \(tokenizer.vocabularySize) tokens, more than the encoder's \(t5.config.vocabSize) embedding rows: give the model's own tokenizer_3/ folder")
    }

    /// Refuses weights whose decoded size (`bytesPerWeight` per element) is more than this machine's memory.
    static func requireFits(_ weights: any WeightProvider, bytesPerWeight: Int) throws {
        let (bytes, overflow) = weights.pendingElementCount.multipliedReportingOverflow(by: bytesPerWeight)
        let available = ProcessInfo.processInfo.physicalMemory
        guard overflow || UInt64(bytes) > available else { return }
        throw ModelError.tooLarge(path: weights.source, bytes: overflow ? Int.max : bytes, available: available)
    }
}
