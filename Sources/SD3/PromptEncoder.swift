import Foundation
import SafeTensors
import Tensors
import Tokenizers

/// SD3's three text encoders with their tokenizers, and `StableDiffusion3Pipeline.encode_prompt`
/// (diffusers 0.42.1): CLIP-L ‖ CLIP-G penultimate states zero-padded to the T5 width, then T5's states;
/// pooled = CLIP-L ‖ CLIP-G text_embeds. Without T5 its part is zeros, as diffusers does with
/// `text_encoder_3=None`.
public struct PromptEncoder: Sendable {
    public let tokenizers: PromptTokenizers
    let clipL: CLIPTextModelWithProjection, clipG: CLIPTextModelWithProjection, t5: T5EncoderModel?
    /// transformer.config.joint_attention_dim: the width of prompt_embeds (and of T5's zeros when it is off).
    public let jointAttentionDim: Int

    /// Loads the text side of a diffusers folder; `useT5: false` never reads text_encoder_3.
    /// `t5Int8`: T5's projections are stored weight-only int8 (`T5EncoderModel`).
    public init(model path: String, jointAttentionDim: Int, useT5: Bool, precision: Precision, t5Int8: Bool = false) throws {
        func folder(_ name: String) throws -> ComponentFolder { try ComponentFolder(path + "/" + name) }
        tokenizers = try PromptTokenizers(model: path, useT5: useT5)
        let l = try folder("text_encoder"), g = try folder("text_encoder_2")
        clipL = try CLIPTextModelWithProjection(config: try l.config(CLIPTextConfig.self), weights: try l.weights(), precision: precision)
        clipG = try CLIPTextModelWithProjection(config: try g.config(CLIPTextConfig.self), weights: try g.weights(), precision: precision)
        if useT5 {
            let t = try folder("text_encoder_3")
            t5 = try T5EncoderModel(config: try t.config(T5Config.self), weights: try t.weights(), precision: precision, int8: t5Int8)
        } else {
            t5 = nil
        }
        self.jointAttentionDim = jointAttentionDim
        let clipWidth = clipL.config.hiddenSize + clipG.config.hiddenSize
        guard clipWidth <= jointAttentionDim, t5.map({ $0.config.dModel == jointAttentionDim }) ?? true else {
            throw ModelError.unsupported(path: path, reason: "text widths (CLIP \(clipWidth), T5 \(t5?.config.dModel ?? 0)) do not fit joint_attention_dim \(jointAttentionDim)")
        }
    }

    public var hasT5: Bool { t5 != nil }

    /// `encode_prompt` for a batch of prompts; `negative` (nil → "") is encoded when guidance is on.
    public func encode(prompts: [String], negative: [String]?, guidance: Bool, maxSequenceLength: Int = 256,
                       clipSkip: Int? = nil, compute: Compute) throws -> Conditioning {
        guard (1...512).contains(maxSequenceLength) else { throw PromptError.maxSequenceLength(maxSequenceLength) }
        var warnings: [String] = []
        let (embeds, pooled) = try embed(prompts, maxSequenceLength: maxSequenceLength, clipSkip: clipSkip, compute: compute, warnings: &warnings)
        var conditioning = Conditioning(promptEmbeds: embeds, pooled: pooled)
        if guidance {
            let negatives = negative ?? Array(repeating: "", count: prompts.count)
            guard negatives.count == prompts.count else { throw PromptError.batchMismatch(prompts: prompts.count, negatives: negatives.count) }
            // Negative prompts always use clip_skip = None.
            let (n, np) = try embed(negatives, maxSequenceLength: maxSequenceLength, clipSkip: nil, compute: compute, warnings: &warnings)
            conditioning.negativePromptEmbeds = n
            conditioning.negativePooled = np
        }
        conditioning.warnings = warnings
        return conditioning
    }

    private func embed(_ prompts: [String], maxSequenceLength: Int, clipSkip: Int?, compute: Compute,
                       warnings: inout [String]) throws -> (Tensor, Tensor) {
        func ids(_ name: String, _ encodings: [PipelineEncoding], limit: Int) -> [[Int]] {
            for e in encodings { if let removed = e.removedText { warnings.append("\(name) takes \(limit) tokens; dropped: \"\(removed)\"") } }
            return encodings.map(\.ids)
        }
        let clipLength = tokenizers.clipLength
        let l = clipL(ids("CLIP-L", try prompts.map { try tokenizers.pipelineIds($0, encoder: .clipL) }, limit: clipLength),
                      clipSkip: clipSkip, compute: compute)
        let g = clipG(ids("CLIP-G", try prompts.map { try tokenizers.pipelineIds($0, encoder: .clipG) }, limit: clipLength),
                      clipSkip: clipSkip, compute: compute)
        let batch = prompts.count
        let clip = Tensor.concat([l.hiddenState, g.hiddenState], axis: -1)  // [B, 77, 2048]
        let padded = Tensor.concat([clip, Tensor(zeros: [batch, clip.dim(1), jointAttentionDim - clip.dim(2)])], axis: -1)
        let t5States: Tensor
        if let t5 {
            let encodings = try prompts.map { try tokenizers.pipelineIds($0, encoder: .t5, maxSequenceLength: maxSequenceLength) }
            t5States = t5(ids("T5", encodings, limit: maxSequenceLength), compute: compute)  // [B, L, 4096]
        } else {
            t5States = Tensor(zeros: [batch, maxSequenceLength, jointAttentionDim])
        }
        return (Tensor.concat([padded, t5States], axis: 1), Tensor.concat([l.textEmbeds, g.textEmbeds], axis: -1))
    }
}

/// The three tokenizer folders of a diffusers SD3 model, giving the ids the pipeline feeds each encoder.
public struct PromptTokenizers: Sendable {
    let tokenizer: CLIPTokenizer, tokenizer2: CLIPTokenizer, tokenizer3: T5Tokenizer?

    public init(model path: String, useT5: Bool) throws {
        func url(_ name: String) -> URL { URL(fileURLWithPath: path + "/" + name) }
        tokenizer = try CLIPTokenizer(folder: url("tokenizer"))
        tokenizer2 = try CLIPTokenizer(folder: url("tokenizer_2"))
        tokenizer3 = useT5 ? try T5Tokenizer(folder: url("tokenizer_3")) : nil
    }

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

    public var description: String {
        switch self {
        case let .maxSequenceLength(n): return "max_sequence_length \(n) is outside 1…512"
        case let .batchMismatch(p, n): return "\(n) negative prompts for \(p) prompts"
        case .noT5: return "T5 is off (or the model has no text_encoder_3)"
        }
    }
}
