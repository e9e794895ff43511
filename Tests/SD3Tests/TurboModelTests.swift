import Foundation
import Testing
@testable import SD3

/// SD3.5 Large Turbo and TensorArt's SD3.5 Medium Turbo need no loader of their own: Large Turbo's
/// `transformer/config.json` is byte-identical to SD3.5 Large's (no `dual_attention_layers` key), Medium Turbo is a
/// fine-tune of SD3.5 Medium's architecture (its model card loads it with StableDiffusion3Pipeline, its LoRA variant
/// fuses into SD3.5 Medium), their schedulers are the plain FlowMatchEulerDiscreteScheduler at shift 3, and their
/// single files carry the base models' keys (RealKeyMapTests covers those). The few-step settings (4 steps at
/// guidance 0; 8 at 1.5) are the recipes' (recipes/sd35-*-turbo.toml); guidance 0 runs end to end in FlashSchedulerTests.
@Suite struct TurboModelTests {
    static let largeTurboTransformer = #"""
        {"_class_name": "SD3Transformer2DModel", "_diffusers_version": "0.31.0.dev0", "attention_head_dim": 64,
         "caption_projection_dim": 2432, "in_channels": 16, "joint_attention_dim": 4096, "num_attention_heads": 38,
         "num_layers": 38, "out_channels": 16, "patch_size": 2, "pooled_projection_dim": 2048, "pos_embed_max_size": 192,
         "qk_norm": "rms_norm", "sample_size": 128}
        """#
    static let mediumTurboTransformer = #"""
        {"_class_name": "SD3Transformer2DModel", "attention_head_dim": 64, "caption_projection_dim": 1536,
         "dual_attention_layers": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "in_channels": 16, "joint_attention_dim": 4096,
         "num_attention_heads": 24, "num_layers": 24, "out_channels": 16, "patch_size": 2, "pooled_projection_dim": 2048,
         "pos_embed_max_size": 384, "qk_norm": "rms_norm", "sample_size": 128}
        """#
    static let scheduler = #"{"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}"#

    @Test func configsAreTheBaseModelsPresets() throws {
        let decoder = JSONDecoder()
        let large = try decoder.decode(SD3TransformerConfig.self, from: Data(Self.largeTurboTransformer.utf8))
        #expect(large == .sd35Large && large.problem == nil && HeaderConfigs.familyName(large) == "SD3.5 Large")
        let medium = try decoder.decode(SD3TransformerConfig.self, from: Data(Self.mediumTurboTransformer.utf8))
        #expect(medium == .sd35Medium && medium.problem == nil && HeaderConfigs.familyName(medium) == "SD3.5 Medium")
        let config = try decoder.decode(FlowMatchEulerDiscreteScheduler.Config.self, from: Data(Self.scheduler.utf8))
        var schedule = try FlowMatchEulerDiscreteScheduler(config: config)
        try schedule.setTimesteps(4)
        #expect(schedule.sigmas.count == 5 && schedule.sigmas.first == 1 && schedule.sigmas.last == 0)
    }
}
