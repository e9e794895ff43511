import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// `encode_prompt` against diffusers 0.42.1 on the tiny pipeline (scripts/fixtures/text_encoders.py):
/// with and without T5, negative prompts, max_sequence_length 77 and 256, a prompt longer than 77 tokens.
@Suite struct PromptEncoderTests {
    static let folder = TextEncoderTests.folder
    static let reference = TextEncoderTests.reference

    @Test func encodePromptMatchesDiffusers() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        let withT5 = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, t5: .on, precision: .fp32)
        let withoutT5 = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, t5: .off, precision: .fp32)
        #expect(withT5.hasT5 && !withoutT5.hasT5)
        for (index, c) in cases.enumerated() {
            let encoder = (c["t5"] as! Bool) ? withT5 : withoutT5
            let length = c["max_sequence_length"] as! Int
            let result = try encoder.encode(prompts: c["prompt"] as! [String], negative: c["negative_prompt"] as? [String], guidance: true,
                                            maxSequenceLength: length, compute: Backends.shared)
            let limit = try Self.limit(tokens: length)
            TextEncoderTests.expectClose(result.promptEmbeds, "case\(index).prompt_embeds", limit: limit)
            TextEncoderTests.expectClose(result.pooled, "case\(index).pooled_prompt_embeds", limit: limit)
            TextEncoderTests.expectClose(try #require(result.negativePromptEmbeds), "case\(index).negative_prompt_embeds", limit: limit)
            TextEncoderTests.expectClose(try #require(result.negativePooled), "case\(index).negative_pooled_prompt_embeds", limit: limit)
            if index == 3 {
                #expect(result.warnings.count == 3, "long prompt: \(result.warnings)")
                #expect(result.warnings.first?.contains("dropped: \"") == true)
            } else {
                #expect(result.warnings.isEmpty, "case \(index): \(result.warnings)")
            }
        }
    }

    /// The longer of the CLIP and T5 chains.
    static func limit(tokens: Int) throws -> ParityLimit {
        let source = try ModelSource(Self.folder)
        return ParityLimit.clip(try source.clipConfig(.textEncoder)).or(.clip(try source.clipConfig(.textEncoder2)))
            .or(.t5(try source.t5Config(), tokens: tokens))
    }

    /// The limit catches a small error: prompt embeddings from bf16-rounded weights fail it.
    @Test func limitCatchesBF16Weights() throws {
        let encoder = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, t5: .on, precision: .bf16)
        let result = try encoder.encode(prompts: ["a photo of a cat"], negative: nil, guidance: false, maxSequenceLength: 77,
                                        compute: Backends.shared)
        let reference = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, t5: .on, precision: .fp32)
            .encode(prompts: ["a photo of a cat"], negative: nil, guidance: false, maxSequenceLength: 77, compute: Backends.shared)
        let (error, allowed) = try Self.limit(tokens: 77).check(result.promptEmbeds, reference.promptEmbeds)
        #expect(error > allowed, "bf16 prompt embeddings differ by \(error), within the fp32 limit \(allowed)")
    }

    @Test func badInputsAreNamed() throws {
        let encoder = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, t5: .off, precision: .fp32)
        #expect(throws: PromptError.maxSequenceLength(513)) {
            try encoder.encode(prompts: ["x"], negative: nil, guidance: false, maxSequenceLength: 513, compute: Backends.shared)
        }
        #expect(throws: PromptError.noT5) { try encoder.tokenizers.pipelineIds("x", encoder: .t5) }
        #expect(throws: PromptError.batchMismatch(prompts: 1, negatives: 2)) {
            try encoder.encode(prompts: ["x"], negative: ["a", "b"], guidance: true, compute: Backends.shared)
        }
        #expect(throws: (any Error).self) { try PromptEncoder(model: "/nonexistent", jointAttentionDim: 80, t5: .on, precision: .fp32) }
    }
}
