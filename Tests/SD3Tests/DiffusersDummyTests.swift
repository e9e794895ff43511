import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// The sizes of diffusers' own SD3 pipeline tests (scripts/fixtures/diffusers_dummy.py): CLIP states 64 wide against a
/// joint_attention_dim of 32 (cropped as torch's negative F.pad does), patch size 1, a one-block VAE, a relu T5, legacy
/// CLIP eos ids; SD3 and SD3.5 transformers, txt2img and img2img, with and without T5, guidance 1, non-square and the
/// default size. End to end ≥ 45 dB against diffusers 0.42.1.
@Suite struct DiffusersDummyTests {
    static let fixtures = TransformerTests.fixtures
    static let folder = fixtures + "/diffusers-dummy"
    static let reference = try! SafeTensorsFile(path: fixtures + "/diffusers-dummy.safetensors")

    /// diffusers-dummy with the SD3.5-style transformer.
    static let sd35Folder = PipelineTests.withTransformer(fixtures + "/diffusers-dummy-sd35-transformer", base: folder, name: "diffusers-dummy-sd35")

    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func pipelinesMatchDiffusers(backend: BackendKind) throws {
        var options = LoadOptions()
        (options.backend, options.threads) = (backend, 2)
        _ = try PipelineTests.runCases(Self.reference, folders: ["sd3": Self.folder, "sd35": Self.sd35Folder], options: options) { label, o in
            #expect(o.latentError <= o.latentAllowed, "\(label): latents max abs error \(o.latentError) > \(o.latentAllowed)")
            #expect(o.psnr >= 45 && o.worstPixel <= 8, "\(label): PSNR \(o.psnr) dB, max pixel difference \(o.worstPixel)")
        }
    }

    /// encode_prompt crops the 64-wide CLIP states to the joint width (32): CLIP-L's states alone, then T5's.
    @Test func promptEmbeddingsAreCropped() throws {
        let source = try ModelSource(Self.folder)
        let joint = try source.transformerConfig().jointAttentionDim
        let encoder = try PromptEncoder(source: source, jointAttentionDim: joint, t5: .on, precision: .fp32)
        let result = try encoder.encode(prompts: ["A painting of a squirrel eating a burger"], negative: [""], guidance: true,
                                        maxSequenceLength: 256, compute: Backends.shared)
        #expect(result.promptEmbeds.shape == [1, 77 + 256, 32])
        let limit = ParityLimit.clip(try source.clipConfig(.textEncoder)).or(.t5(try source.t5Config(), tokens: 256))
        for (name, value) in [("prompt_embeds", result.promptEmbeds), ("pooled_prompt_embeds", result.pooled),
                              ("negative_prompt_embeds", try #require(result.negativePromptEmbeds)),
                              ("negative_pooled_prompt_embeds", try #require(result.negativePooled))] {
            expectMatches(value, Self.reference, "case0.\(name)", limit: limit)
        }
    }

    /// Without defaults.json a model draws at diffusers' default size, sample_size × vae_scale_factor, with its
    /// scheduler's shift: 32 × 1 here, 32 × 2 for tiny-sd3 (whose scheduler shifts by 3).
    @Test func defaultsComeFromTheConfigs() throws {
        let dummy = try ModelDefaults.resolved(ModelSource(Self.folder))
        #expect(dummy.width == 32 && dummy.height == 32 && dummy.shift == 1.0 && dummy.steps == nil)
        let tiny = try ModelDefaults.resolved(ModelSource(Self.fixtures + "/tiny-sd3"))
        #expect(tiny.width == 64 && tiny.height == 64 && tiny.shift == 3.0)
    }
}
