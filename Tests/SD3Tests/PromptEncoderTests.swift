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
        let withT5 = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, useT5: true, precision: .fp32)
        let withoutT5 = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, useT5: false, precision: .fp32)
        #expect(withT5.hasT5 && !withoutT5.hasT5)
        for (index, c) in cases.enumerated() {
            let encoder = (c["t5"] as! Bool) ? withT5 : withoutT5
            let result = try encoder.encode(prompts: c["prompt"] as! [String], negative: c["negative_prompt"] as? [String], guidance: true,
                                            maxSequenceLength: c["max_sequence_length"] as! Int, compute: Backends.shared)
            TextEncoderTests.expectClose(result.promptEmbeds, "case\(index).prompt_embeds")
            TextEncoderTests.expectClose(result.pooled, "case\(index).pooled_prompt_embeds")
            TextEncoderTests.expectClose(try #require(result.negativePromptEmbeds), "case\(index).negative_prompt_embeds")
            TextEncoderTests.expectClose(try #require(result.negativePooled), "case\(index).negative_pooled_prompt_embeds")
            if index == 3 {
                #expect(result.warnings.count == 3, "long prompt: \(result.warnings)")
                #expect(result.warnings.first?.contains("dropped: \"") == true)
            } else {
                #expect(result.warnings.isEmpty, "case \(index): \(result.warnings)")
            }
        }
    }

    @Test func badInputsAreNamed() throws {
        let encoder = try PromptEncoder(model: Self.folder, jointAttentionDim: 80, useT5: false, precision: .fp32)
        #expect(throws: PromptError.maxSequenceLength(513)) {
            try encoder.encode(prompts: ["x"], negative: nil, guidance: false, maxSequenceLength: 513, compute: Backends.shared)
        }
        #expect(throws: PromptError.noT5) { try encoder.tokenizers.pipelineIds("x", encoder: .t5) }
        #expect(throws: PromptError.batchMismatch(prompts: 1, negatives: 2)) {
            try encoder.encode(prompts: ["x"], negative: ["a", "b"], guidance: true, compute: Backends.shared)
        }
        #expect(throws: (any Error).self) { try PromptEncoder(model: "/nonexistent", jointAttentionDim: 80, useT5: true, precision: .fp32) }
    }
}
