import ArgumentParser
import Foundation
import SafeTensors
import SD3
import Tensors

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids the pipeline feeds an encoder: one JSON array per input (padded and truncated).")

    @Option(help: "A diffusers SD3 folder, cached repo id or single-file checkpoint (only its tokenizers are read).") var model: String
    @Option(help: "clip-l, clip-g or t5.") var encoder: String
    @Option(help: "T5 tokens (1…512).") var maxSequenceLength = 256
    @Option(help: "Read inputs from this file, one per line (lines split on \"\\n\" only).") var file: String?
    @Argument(help: "Texts to tokenize (each argument one input).") var text: [String] = []

    func run() throws {
        guard let kind = TextEncoderKind(rawValue: encoder) else { throw ValidationError("--encoder must be clip-l, clip-g or t5, not '\(encoder)'") }
        let inputs: [String]
        if let file {
            guard text.isEmpty else { throw ValidationError("give the text either as arguments or with --file, not both") }
            inputs = try TextInputs.lines(of: file)
        } else {
            guard !text.isEmpty else { throw ValidationError("give the text as arguments or with --file") }
            inputs = text
        }
        let tokenizers = try PromptTokenizers(model: model, useT5: kind == .t5)
        for input in inputs {
            let ids = try tokenizers.pipelineIds(input, encoder: kind, maxSequenceLength: maxSequenceLength).ids
            print("[" + ids.map(String.init).joined(separator: ", ") + "]")
        }
    }
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Run encode_prompt and write prompt_embeds, negative_prompt_embeds, pooled_prompt_embeds and negative_pooled_prompt_embeds.")

    @Option(help: "A diffusers SD3 folder, cached repo id or single-file checkpoint.") var model: String
    @OptionGroup var files: ModelFiles
    @Option(help: "T5 weights for a single-file --model that lacks them.") var t5: String?
    @Option(name: .shortAndLong, help: "The prompt.") var prompt: String
    @Option(name: [.customShort("n"), .long], help: "The negative prompt (an empty one is encoded).") var negativePrompt = ""
    @Flag(help: "Leave T5 out (its part is zeros, as diffusers does without text_encoder_3).") var noT5 = false
    @Option(help: "T5 tokens (1…512).") var maxSequenceLength = 256
    @Option(help: "fp32 or bf16 weights.") var precision: String = "fp32"
    @Option(name: .shortAndLong, help: "The .safetensors file to write.") var output: String

    func run() throws {
        guard let precision = Precision(rawValue: precision) else { throw ValidationError("--precision must be fp32 or bf16") }
        let source = try ModelSource(model, extras: files.extras(t5File: t5))
        let transformer = try source.transformerConfig()
        let t5Present = source.has(.textEncoder3)
        if !noT5 && !t5Present { log("warning: \(model) has no T5 weights; T5 embeddings are zeros") }
        let encoder = try PromptEncoder(source: source, jointAttentionDim: transformer.jointAttentionDim, t5: !noT5 && t5Present ? .on : .off, precision: precision)
        let c = try encoder.encode(prompts: [prompt], negative: [negativePrompt], guidance: true,
                                   maxSequenceLength: maxSequenceLength, compute: try Compute())
        for warning in c.warnings { log("warning: \(warning)") }
        try SafeTensorsWriter(entries: [.init("prompt_embeds", c.promptEmbeds), .init("negative_prompt_embeds", c.negativePromptEmbeds!),
                                        .init("pooled_prompt_embeds", c.pooled), .init("negative_pooled_prompt_embeds", c.negativePooled!)],
                              metadata: ["prompt": prompt, "negative_prompt": negativePrompt, "t5": encoder.hasT5 ? "on" : "off",
                                         "max_sequence_length": "\(maxSequenceLength)", "made_by": "sd3-studio \(SD3.version)"])
            .write(to: output)
        print(output)
    }
}
