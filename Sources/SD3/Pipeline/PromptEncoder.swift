import Foundation
import SafeTensors
import Tensors
import Tokenizers

/// SD3's three text encoders with their tokenizers, and `StableDiffusion3Pipeline.encode_prompt`
/// (diffusers 0.42.1): CLIP-L ‖ CLIP-G penultimate states zero-padded (or cropped) to the T5 width, then T5's states;
/// pooled = CLIP-L ‖ CLIP-G text_embeds. Without T5 its part is zeros, as diffusers does with
/// `text_encoder_3=None`. An encoder can hold only its CLIP pair or only T5 (`Models`), so staged
/// loading never has T5-XXL and CLIP-G in memory at once.
public struct PromptEncoder: Sendable {
    public enum Models: Sendable { case all, clipOnly, t5Only }

    public let tokenizers: PromptTokenizers
    let clip: (l: CLIPTextModelWithProjection, g: CLIPTextModelWithProjection)?
    let t5: T5EncoderModel?
    /// transformer.config.joint_attention_dim: the width of prompt_embeds (and of T5's zeros when it is off).
    public let jointAttentionDim: Int

    /// Loads the text side of a diffusers folder; `t5: .off` never reads text_encoder_3, nor `.clipOnly`;
    /// `.t5Only` reads only text_encoder_3. `t5: .int8`: T5's projections are stored weight-only int8.
    public init(model path: String, jointAttentionDim: Int, t5: T5Mode, precision: Precision, models: Models = .all) throws {
        try self.init(source: try ModelSource(path), jointAttentionDim: jointAttentionDim, t5: t5, precision: precision, models: models)
    }

    /// The same from any model source (a diffusers folder or single-file checkpoints).
    public init(source: ModelSource, jointAttentionDim: Int, t5 mode: T5Mode, precision: Precision, models: Models = .all) throws {
        let loadT5 = mode != .off && models != .clipOnly
        tokenizers = try source.tokenizers(useT5: loadT5)
        if models != .t5Only {
            clip = (try CLIPTextModelWithProjection(config: try source.clipConfig(.textEncoder), weights: try source.weights(.textEncoder),
                                                    precision: precision),
                    try CLIPTextModelWithProjection(config: try source.clipConfig(.textEncoder2), weights: try source.weights(.textEncoder2),
                                                    precision: precision))
        } else {
            clip = nil
        }
        if loadT5 {
            t5 = try T5EncoderModel(config: try source.t5Config(), weights: try source.weights(.textEncoder3), precision: precision, int8: mode == .int8)
        } else {
            t5 = nil
        }
        self.jointAttentionDim = jointAttentionDim
        if let clip, tokenizers.clipVocabularySizes.l > clip.l.config.vocabSize || tokenizers.clipVocabularySizes.g > clip.g.config.vocabSize {
            throw ModelError.unsupported(path: source.path, reason: "the CLIP tokenizers have \(tokenizers.clipVocabularySizes) tokens, more than the encoders' embeddings' \((clip.l.config.vocabSize, clip.g.config.vocabSize)) rows: give the model's own tokenizer/ and tokenizer_2/ folders (beside the checkpoint or with --config-from)")
        }
        // The CLIP pair may be wider than joint_attention_dim (it is cropped, as torch's F.pad does with a negative
        // width); T5's states go to the transformer as they are, so its width must be the joint one.
        if let t5, t5.config.dModel != jointAttentionDim {
            throw ModelError.unsupported(path: source.path, reason: "T5's width d_model \(t5.config.dModel) is not the transformer's joint_attention_dim \(jointAttentionDim)")
        }
    }

    public var hasT5: Bool { t5 != nil }

    /// Throws for the first pair of `loras` on CLIP-L or CLIP-G that names no layer of this encoder or has another
    /// shape (nothing to check without the CLIP pair; no LoRA targets T5).
    public func check(_ loras: ActiveLoras) throws {
        guard let clip else { return }
        try loras.check(.textEncoder, layers: clip.l.loraLayers)
        try loras.check(.textEncoder2, layers: clip.g.loraLayers)
    }

    /// What the CLIP pair gives a batch of prompts (and negatives when guidance is on).
    public struct CLIPHalf: Sendable {
        /// [B, 77, joint_attention_dim]: CLIP-L ‖ CLIP-G zero-padded (or cropped) to the T5 width.
        var states: Tensor, pooled: Tensor
        var negativeStates: Tensor?, negativePooled: Tensor?
        var warnings: [String]
    }

    /// `encode_prompt` for a batch of prompts; `negative` (nil → "") is encoded when guidance is on. `loras`: run-time
    /// LoRA pairs for the CLIP encoders, checked (`check`) before they run.
    public func encode(prompts: [String], negative: [String]?, guidance: Bool, maxSequenceLength: Int = 256,
                       clipSkip: Int? = nil, compute: Compute, loras: ActiveLoras = .none) throws -> Conditioning {
        let half = try encodeCLIP(prompts: prompts, negative: negative, guidance: guidance, maxSequenceLength: maxSequenceLength,
                                  clipSkip: clipSkip, compute: compute, loras: loras)
        return try encodeT5(half, prompts: prompts, negative: negative, guidance: guidance, maxSequenceLength: maxSequenceLength, compute: compute)
    }

    /// The CLIP part of `encode`.
    public func encodeCLIP(prompts: [String], negative: [String]?, guidance: Bool, maxSequenceLength: Int = 256,
                           clipSkip: Int? = nil, compute: Compute, loras: ActiveLoras = .none) throws -> CLIPHalf {
        guard (1...512).contains(maxSequenceLength) else { throw PromptError.maxSequenceLength(maxSequenceLength) }
        guard let clip else { throw PromptError.noCLIP }
        try check(loras)
        var warnings: [String] = []
        let (states, pooled) = try clipStates(clip, prompts, clipSkip: clipSkip, compute: compute, loras: loras, warnings: &warnings)
        var half = CLIPHalf(states: states, pooled: pooled, warnings: [])
        if guidance {
            let negatives = try Self.negatives(negative, count: prompts.count)
            // Negative prompts always use clip_skip = None.
            (half.negativeStates, half.negativePooled) = try clipStates(clip, negatives, clipSkip: nil, compute: compute, loras: loras,
                                                                       warnings: &warnings)
        }
        half.warnings = warnings
        return half
    }

    /// Completes `half` with T5's states (zeros when this encoder has no T5): the prompt embeddings.
    public func encodeT5(_ half: CLIPHalf, prompts: [String], negative: [String]?, guidance: Bool, maxSequenceLength: Int = 256,
                         compute: Compute) throws -> Conditioning {
        var warnings = half.warnings
        let embeds = Tensor.concat([half.states, try t5States(prompts, maxSequenceLength: maxSequenceLength, compute: compute, warnings: &warnings)], axis: 1)
        var conditioning = Conditioning(promptEmbeds: embeds, pooled: half.pooled)
        if guidance, let negativeStates = half.negativeStates {
            let negatives = try Self.negatives(negative, count: prompts.count)
            let t5 = try t5States(negatives, maxSequenceLength: maxSequenceLength, compute: compute, warnings: &warnings)
            conditioning.negativePromptEmbeds = Tensor.concat([negativeStates, t5], axis: 1)
            conditioning.negativePooled = half.negativePooled
        }
        conditioning.warnings = warnings
        return conditioning
    }

    private static func negatives(_ negative: [String]?, count: Int) throws -> [String] {
        let negatives = negative ?? Array(repeating: "", count: count)
        guard negatives.count == count else { throw PromptError.batchMismatch(prompts: count, negatives: negatives.count) }
        return negatives
    }

    private func ids(_ name: String, _ encodings: [PipelineEncoding], limit: Int, warnings: inout [String]) -> [[Int]] {
        for e in encodings { if let removed = e.removedText { warnings.append("\(name) takes \(limit) tokens; dropped: \"\(removed)\"") } }
        return encodings.map(\.ids)
    }

    private func clipStates(_ clip: (l: CLIPTextModelWithProjection, g: CLIPTextModelWithProjection), _ prompts: [String],
                            clipSkip: Int?, compute: Compute, loras: ActiveLoras, warnings: inout [String]) throws -> (Tensor, Tensor) {
        let clipLength = tokenizers.clipLength
        let l = clip.l(ids("CLIP-L", try prompts.map { try tokenizers.pipelineIds($0, encoder: .clipL) }, limit: clipLength, warnings: &warnings),
                       clipSkip: clipSkip, compute: compute, loras: loras[.textEncoder])
        let g = clip.g(ids("CLIP-G", try prompts.map { try tokenizers.pipelineIds($0, encoder: .clipG) }, limit: clipLength, warnings: &warnings),
                       clipSkip: clipSkip, compute: compute, loras: loras[.textEncoder2])
        let both = Tensor.concat([l.hiddenState, g.hiddenState], axis: -1)  // [B, 77, 2048]
        return (Self.fitted(both, width: jointAttentionDim), Tensor.concat([l.textEmbeds, g.textEmbeds], axis: -1))
    }

    /// encode_prompt's `F.pad(clip_prompt_embeds, (0, t5_width − clip_width))`: zeros on the right up to the T5 width
    /// (SD3: 2048 → 4096), or, with a negative width, the rightmost channels cropped (diffusers' test pipelines: CLIP
    /// 32 + 32 = 64 states against a joint width of 32 keep CLIP-L's 32). [B, L, C] → [B, L, width].
    static func fitted(_ states: Tensor, width: Int) -> Tensor {
        let extra = states.dim(2) - width
        if extra > 0 { return states.split([width, extra], axis: -1)[0] }
        return extra == 0 ? states : Tensor.concat([states, Tensor(zeros: [states.dim(0), states.dim(1), -extra])], axis: -1)
    }

    /// [B, L, joint_attention_dim]: T5's last hidden state, or zeros without T5.
    private func t5States(_ prompts: [String], maxSequenceLength: Int, compute: Compute, warnings: inout [String]) throws -> Tensor {
        guard let t5 else { return Tensor(zeros: [prompts.count, maxSequenceLength, jointAttentionDim]) }
        let encodings = try prompts.map { try tokenizers.pipelineIds($0, encoder: .t5, maxSequenceLength: maxSequenceLength) }
        return t5(ids("T5", encodings, limit: maxSequenceLength, warnings: &warnings), compute: compute)
    }
}

/// The three tokenizer folders of a diffusers SD3 model, giving the ids the pipeline feeds each encoder.
public struct PromptTokenizers: Sendable {
    let tokenizer: CLIPTokenizer, tokenizer2: CLIPTokenizer, tokenizer3: T5Tokenizer?

    public init(model path: String, useT5: Bool) throws {
        let folders = try ModelSource(path).tokenizerFolders(useT5: useT5)
        try self.init(clipL: folders.clipL, clipG: folders.clipG, t5: folders.t5)
    }

    /// A nil CLIP folder means the app's own CLIP vocabulary with SD3's padding (`!` for CLIP-G).
    public init(clipL: URL?, clipG: URL?, t5: URL?) throws {
        tokenizer = try clipL.map { try CLIPTokenizer(folder: $0) } ?? CLIPTokenizer(bundledPaddingWith: "<|endoftext|>")
        tokenizer2 = try clipG.map { try CLIPTokenizer(folder: $0) } ?? CLIPTokenizer(bundledPaddingWith: "!")
        tokenizer3 = try t5.map { try T5Tokenizer(folder: $0) }
    }

    /// Ids each tokenizer can produce (its vocabulary plus added tokens), to check against an encoder's embedding.
    public var clipVocabularySizes: (l: Int, g: Int) { (tokenizer.vocabularySize, tokenizer2.vocabularySize) }

    /// tokenizer.model_max_length: 77 for SD3.
    public var clipLength: Int { tokenizer.modelMaxLength.map { min($0, 77) } ?? 77 }

    /// The ids `encoder` gets for `text`, padded and truncated as the pipeline does, with what was cut off.
    public func pipelineIds(_ text: String, encoder: TextEncoderKind, maxSequenceLength: Int = 256) throws -> PipelineEncoding {
        switch encoder {
        case .clipL: return tokenizer.encodeForPipeline(text, maxLength: clipLength)
        case .clipG: return tokenizer2.encodeForPipeline(text, maxLength: clipLength)
        case .t5:
            guard let tokenizer3 else { throw PromptError.noT5 }
            guard (1...512).contains(maxSequenceLength) else { throw PromptError.maxSequenceLength(maxSequenceLength) }
            // Warn from max_sequence_length − 1: the words actually dropped (diffusers decodes from index 76).
            return tokenizer3.encodeForPipeline(text, maxLength: maxSequenceLength, removedTextStart: maxSequenceLength - 1)
        }
    }
}

public enum TextEncoderKind: String, Sendable, CaseIterable {
    case clipL = "clip-l", clipG = "clip-g", t5
}

public enum PromptError: Error, Equatable, CustomStringConvertible {
    case maxSequenceLength(Int)
    case batchMismatch(prompts: Int, negatives: Int)
    case noT5
    case noCLIP

    public var description: String {
        switch self {
        case let .maxSequenceLength(n): return "max_sequence_length \(n) is outside 1…512"
        case let .batchMismatch(p, n): return "\(n) negative prompts for \(p) prompts"
        case .noT5: return "T5 is off (or the model has no text_encoder_3)"
        case .noCLIP: return "this prompt encoder holds T5 only"
        }
    }
}
