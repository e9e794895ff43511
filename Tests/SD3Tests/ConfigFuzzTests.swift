import Foundation
import FuzzSupport
import Testing
@testable import SD3

/// Seeded mutations of real config.json files (the tiny model's and SD3.5 Large's shapes) through the decoding and
/// checks every loader uses (`ComponentFolder.checkedConfig`), as each of the five config types: each is refused with
/// one line naming the file, or accepted with values a naive re-check finds buildable (no division by zero, no
/// overflowing product, a finite schedule).
@Suite struct ConfigFuzzTests {
    static let path = "fuzz/config.json"

    static let corpus: [[UInt8]] = {
        var texts = ["transformer/config.json", "vae/config.json", "text_encoder/config.json", "text_encoder_3/config.json",
                     "scheduler/scheduler_config.json"].map { try! String(contentsOfFile: Hostile.tiny + "/" + $0, encoding: .utf8) }
        texts.append(#"{"attention_head_dim":64,"caption_projection_dim":2432,"in_channels":16,"joint_attention_dim":4096,"num_attention_heads":38,"num_layers":38,"out_channels":16,"patch_size":2,"pooled_projection_dim":2048,"pos_embed_max_size":192,"qk_norm":"rms_norm","sample_size":128,"dual_attention_layers":[]}"#)
        texts.append(#"{"block_out_channels":[128,256,512,512],"in_channels":3,"latent_channels":16,"layers_per_block":2,"norm_num_groups":32,"out_channels":3,"scaling_factor":1.5305,"shift_factor":0.0609,"use_quant_conv":false,"use_post_quant_conv":false}"#)
        texts.append(#"{"hidden_size":1280,"intermediate_size":5120,"num_attention_heads":20,"num_hidden_layers":32,"projection_dim":1280,"max_position_embeddings":77,"hidden_act":"gelu","vocab_size":49408,"eos_token_id":2,"layer_norm_eps":1e-05}"#)
        texts.append(#"{"d_ff":10240,"d_kv":64,"d_model":4096,"num_heads":64,"num_layers":24,"vocab_size":32128,"relative_attention_num_buckets":32,"relative_attention_max_distance":128,"layer_norm_epsilon":1e-06,"feed_forward_proj":"gated-gelu"}"#)
        texts.append(try! String(contentsOfFile: AutoencoderTinyTests.fixtures + "/taesd3/config.json", encoding: .utf8))
        texts.append(#"{"num_train_timesteps":1000,"shift":3.0,"use_dynamic_shifting":true,"base_shift":0.5,"max_shift":1.15,"base_image_seq_len":256,"max_image_seq_len":4096,"shift_terminal":0.02}"#)
        return texts.map { Array($0.utf8) }
    }()

    @Test func mutatedConfigsNeverCrash() {
        var accepted = 0, refused = 0
        func attempt<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], _ check: (T) -> Void) {
            do {
                check(try ComponentFolder.checkedConfig(T.self, Data(bytes), path: Self.path))
                accepted += 1
            } catch {
                refused += 1
                let message = "\(error)"
                #expect(message.hasPrefix(Self.path) && !message.contains("\n"), "\(T.self): \(message)")
            }
        }
        let decodeAll = { (bytes: [UInt8]) in
            attempt(SD3TransformerConfig.self, bytes, Self.check)
            attempt(AutoencoderKLConfig.self, bytes, Self.check)
            attempt(CLIPTextConfig.self, bytes, Self.check)
            attempt(T5Config.self, bytes, Self.check)
            attempt(FlowMatchEulerDiscreteScheduler.Config.self, bytes, Self.check)
            attempt(AutoencoderTinyConfig.self, bytes, Self.check)
        }
        let slowest = Fuzz.run(corpus: Self.corpus, seed: 23, decodeAll)
        let seconds = Fuzz.confirmedSeconds(slowest, decodeAll)
        #expect(seconds < Fuzz.hangGuard, "slowest config took \(seconds) s: \(String(decoding: Array(slowest.input.prefix(200)), as: UTF8.self))")
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    static func check(_ c: SD3TransformerConfig) {
        let width = c.numAttentionHeads.multipliedReportingOverflow(by: c.attentionHeadDim)
        #expect(c.patchSize >= 1 && c.numLayers >= 1 && c.posEmbedMaxSize >= 1 && c.inChannels >= 1 && c.outChannels >= 1, "\(c)")
        #expect(!width.overflow && width.partialValue >= 1 && width.partialValue <= 65536, "\(c)")
        #expect(c.dualAttentionLayers.allSatisfy { $0 >= 0 && $0 < c.numLayers }, "\(c)")
        let table = c.posEmbedMaxSize.multipliedReportingOverflow(by: c.posEmbedMaxSize)
        #expect(!table.overflow && !table.partialValue.multipliedReportingOverflow(by: width.partialValue).overflow, "\(c)")
    }

    static func check(_ c: AutoencoderKLConfig) {
        #expect(!c.blockOutChannels.isEmpty && c.blockOutChannels.count <= 16, "\(c)")
        #expect(c.normNumGroups >= 1 && c.blockOutChannels.allSatisfy { $0 >= 1 && $0 % c.normNumGroups == 0 }, "\(c)")
        #expect(c.scalingFactor.isFinite && c.scalingFactor != 0 && (1 / c.scalingFactor).isFinite, "\(c)")
        #expect((c.shiftFactor ?? 0).isFinite && c.layersPerBlock >= 0 && c.latentChannels >= 1, "\(c)")
        #expect(c.scaleFactor >= 1, "\(c)")
    }

    /// An accepted TAESD config builds: levels of one width each, a block count per level, relu and nearest ×2, and a
    /// scaling that divides to a finite number.
    static func check(_ c: AutoencoderTinyConfig) {
        #expect(c.numEncoderBlocks.count == c.encoderBlockOutChannels.count && c.numDecoderBlocks.count == c.decoderBlockOutChannels.count, "\(c)")
        #expect((1...8).contains(c.numDecoderBlocks.count) && (1...8).contains(c.numEncoderBlocks.count), "\(c)")
        #expect(Set(c.encoderBlockOutChannels).count == 1 && Set(c.decoderBlockOutChannels).count == 1, "\(c)")
        #expect((c.encoderBlockOutChannels + c.decoderBlockOutChannels).allSatisfy { (1...65536).contains($0) }, "\(c)")
        #expect((c.numEncoderBlocks + c.numDecoderBlocks).allSatisfy { (0...64).contains($0) }, "\(c)")
        #expect(c.latentChannels >= 1 && c.inChannels >= 1 && c.outChannels >= 1 && c.actFn == "relu" && c.upsampleFn == "nearest", "\(c)")
        #expect(c.scalingFactor.isFinite && c.scalingFactor != 0 && (1 / c.scalingFactor).isFinite && c.shiftFactor.isFinite, "\(c)")
    }

    static func check(_ c: CLIPTextConfig) {
        #expect(c.numAttentionHeads >= 1 && c.hiddenSize % c.numAttentionHeads == 0, "\(c)")
        #expect(c.maxPositionEmbeddings >= 77 && c.numHiddenLayers >= 1 && c.vocabSize >= 1, "\(c)")
        #expect(c.eosTokenId >= 0 && c.eosTokenId < c.vocabSize && c.layerNormEps.isFinite && c.layerNormEps > 0, "\(c)")
    }

    /// An accepted T5 config gives every relative position a bucket inside its table (the formula takes two logs
    /// and truncates to Int: a zero or negative log would trap).
    static func check(_ c: T5Config) {
        #expect(c.numHeads >= 1 && c.dKv >= 1 && c.dModel >= 1 && c.numLayers >= 1, "\(c)")
        #expect(c.layerNormEpsilon.isFinite && c.layerNormEpsilon > 0, "\(c)")
        for position in [-511, -100, -1, 0, 1, 7, 100, 511] {
            let bucket = T5EncoderModel.relativePositionBucket(position, buckets: c.relativeAttentionNumBuckets,
                                                               maxDistance: c.relativeAttentionMaxDistance)
            #expect(bucket >= 0 && bucket < c.relativeAttentionNumBuckets, "\(c): position \(position) → bucket \(bucket)")
        }
    }

    /// An accepted schedule builds, and without dynamic shifting or a terminal stretch every sigma is finite.
    static func check(_ c: FlowMatchEulerDiscreteScheduler.Config) {
        guard var scheduler = try? FlowMatchEulerDiscreteScheduler(config: c) else { return }
        let mu = c.useDynamicShifting ? scheduler.mu(imageSequenceLength: 4096) : nil
        guard (try? scheduler.setTimesteps(4, mu: mu)) != nil else {
            Issue.record("setTimesteps failed for an accepted config \(c)")
            return
        }
        if !c.useDynamicShifting && c.shiftTerminal == nil {
            let finite = scheduler.sigmas.allSatisfy { $0.isFinite }
            #expect(finite, "\(c): sigmas \(scheduler.sigmas)")
        }
    }
}
