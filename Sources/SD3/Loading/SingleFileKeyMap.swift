import SafeTensors

/// Stability's single-file layout (sd3_medium*.safetensors, sd3.5_*.safetensors, ComfyUI's text_encoders/*)
/// → diffusers names, one map per component. Source: diffusers 0.42.1 `loaders/single_file_utils.py`
/// (`convert_sd3_transformer_checkpoint_to_diffusers`, `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`,
/// `convert_open_clip_checkpoint`, `convert_sd3_t5_checkpoint_to_diffusers`).
public enum SingleFileKeyMap {
    /// The key prefixes of each component inside an all-in-one file.
    public static let prefixes: [(SD3Component, String)] = [
        (.transformer, "model.diffusion_model."), (.vae, "first_stage_model."),
        (.textEncoder, "text_encoders.clip_l.transformer."), (.textEncoder2, "text_encoders.clip_g.transformer."),
        (.textEncoder3, "text_encoders.t5xxl.transformer."),
    ]

    public static func map(for component: SD3Component) -> KeyMap {
        switch component {
        case .transformer: return mmdit
        case .vae: return vae
        case .textEncoder: return clipL
        case .textEncoder2: return clipG
        case .textEncoder3: return t5
        }
    }

    /// MMDiT: fused qkv split in thirds; the last context block's and the final layer's adaLN rows stored
    /// (shift, scale) where diffusers' AdaLayerNormContinuous wants (scale, shift).
    public static let mmdit = KeyMap([
        .init("pos_embed", "pos_embed.pos_embed"),
        .init("x_embedder.proj.{p}", "pos_embed.proj.{p}"),
        .init("t_embedder.mlp.0.{p}", "time_text_embed.timestep_embedder.linear_1.{p}"),
        .init("t_embedder.mlp.2.{p}", "time_text_embed.timestep_embedder.linear_2.{p}"),
        .init("y_embedder.mlp.0.{p}", "time_text_embed.text_embedder.linear_1.{p}"),
        .init("y_embedder.mlp.2.{p}", "time_text_embed.text_embedder.linear_2.{p}"),
        .init("context_embedder.{p}", "context_embedder.{p}"),
        .init("joint_blocks.{i}.x_block.attn.qkv.{p}", ["transformer_blocks.{i}.attn.to_q.{p}", "transformer_blocks.{i}.attn.to_k.{p}",
                                                       "transformer_blocks.{i}.attn.to_v.{p}"], .split),
        .init("joint_blocks.{i}.context_block.attn.qkv.{p}", ["transformer_blocks.{i}.attn.add_q_proj.{p}",
                                                             "transformer_blocks.{i}.attn.add_k_proj.{p}",
                                                             "transformer_blocks.{i}.attn.add_v_proj.{p}"], .split),
        .init("joint_blocks.{i}.x_block.attn.proj.{p}", "transformer_blocks.{i}.attn.to_out.0.{p}"),
        .init("joint_blocks.{i}.context_block.attn.proj.{p}", "transformer_blocks.{i}.attn.to_add_out.{p}"),
        .init("joint_blocks.{i}.x_block.attn.ln_q.weight", "transformer_blocks.{i}.attn.norm_q.weight"),
        .init("joint_blocks.{i}.x_block.attn.ln_k.weight", "transformer_blocks.{i}.attn.norm_k.weight"),
        .init("joint_blocks.{i}.context_block.attn.ln_q.weight", "transformer_blocks.{i}.attn.norm_added_q.weight"),
        .init("joint_blocks.{i}.context_block.attn.ln_k.weight", "transformer_blocks.{i}.attn.norm_added_k.weight"),
        .init("joint_blocks.{i}.x_block.attn2.qkv.{p}", ["transformer_blocks.{i}.attn2.to_q.{p}", "transformer_blocks.{i}.attn2.to_k.{p}",
                                                        "transformer_blocks.{i}.attn2.to_v.{p}"], .split),
        .init("joint_blocks.{i}.x_block.attn2.proj.{p}", "transformer_blocks.{i}.attn2.to_out.0.{p}"),
        .init("joint_blocks.{i}.x_block.attn2.ln_q.weight", "transformer_blocks.{i}.attn2.norm_q.weight"),
        .init("joint_blocks.{i}.x_block.attn2.ln_k.weight", "transformer_blocks.{i}.attn2.norm_k.weight"),
        .init("joint_blocks.{i}.x_block.adaLN_modulation.1.{p}", "transformer_blocks.{i}.norm1.linear.{p}"),
        .init("joint_blocks.{last}.context_block.adaLN_modulation.1.{p}", "transformer_blocks.{last}.norm1_context.linear.{p}", .swapHalves),
        .init("joint_blocks.{i}.context_block.adaLN_modulation.1.{p}", "transformer_blocks.{i}.norm1_context.linear.{p}"),
        .init("joint_blocks.{i}.x_block.mlp.fc1.{p}", "transformer_blocks.{i}.ff.net.0.proj.{p}"),
        .init("joint_blocks.{i}.x_block.mlp.fc2.{p}", "transformer_blocks.{i}.ff.net.2.{p}"),
        .init("joint_blocks.{i}.context_block.mlp.fc1.{p}", "transformer_blocks.{i}.ff_context.net.0.proj.{p}"),
        .init("joint_blocks.{i}.context_block.mlp.fc2.{p}", "transformer_blocks.{i}.ff_context.net.2.{p}"),
        .init("final_layer.linear.{p}", "proj_out.{p}"),
        .init("final_layer.adaLN_modulation.1.{p}", "norm_out.linear.{p}", .swapHalves),
    ])

    /// LDM VAE: `down.N.block.M` → `down_blocks.N.resnets.M`, decoder `up.N` → `up_blocks.(count−1−N)`,
    /// `mid.block_1/2` → `mid_block.resnets.0/1`, attention 1×1 convs → linears.
    public static let vae = KeyMap([
        .init("{s}.conv_in.{p}", "{s}.conv_in.{p}"),
        .init("{s}.conv_out.{p}", "{s}.conv_out.{p}"),
        .init("{s}.norm_out.{p}", "{s}.conv_norm_out.{p}"),
        .init("encoder.down.{i}.block.{j}.nin_shortcut.{p}", "encoder.down_blocks.{i}.resnets.{j}.conv_shortcut.{p}"),
        .init("encoder.down.{i}.block.{j}.{layer}.{p}", "encoder.down_blocks.{i}.resnets.{j}.{layer}.{p}"),
        .init("encoder.down.{i}.downsample.conv.{p}", "encoder.down_blocks.{i}.downsamplers.0.conv.{p}"),
        .init("decoder.up.{r}.block.{j}.nin_shortcut.{p}", "decoder.up_blocks.{r}.resnets.{j}.conv_shortcut.{p}"),
        .init("decoder.up.{r}.block.{j}.{layer}.{p}", "decoder.up_blocks.{r}.resnets.{j}.{layer}.{p}"),
        .init("decoder.up.{r}.upsample.conv.{p}", "decoder.up_blocks.{r}.upsamplers.0.conv.{p}"),
        .init("{s}.mid.block_1.{layer}.{p}", "{s}.mid_block.resnets.0.{layer}.{p}"),
        .init("{s}.mid.block_2.{layer}.{p}", "{s}.mid_block.resnets.1.{layer}.{p}"),
        .init("{s}.mid.attn_1.norm.{p}", "{s}.mid_block.attentions.0.group_norm.{p}"),
        .init("{s}.mid.attn_1.q.{p}", "{s}.mid_block.attentions.0.to_q.{p}", .squeeze),
        .init("{s}.mid.attn_1.k.{p}", "{s}.mid_block.attentions.0.to_k.{p}", .squeeze),
        .init("{s}.mid.attn_1.v.{p}", "{s}.mid_block.attentions.0.to_v.{p}", .squeeze),
        .init("{s}.mid.attn_1.proj_out.{p}", "{s}.mid_block.attentions.0.to_out.0.{p}", .squeeze),
    ])

    /// OpenCLIP text-tower names (open_clip `TextTransformer`), for CLIP files saved that way
    /// (`DIFFUSERS_TO_LDM_MAPPING["openclip"]`); transformers-style files match the catch-all.
    static let openCLIP: [KeyMap.Rule] = [
        .init("token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
        .init("positional_embedding", "text_model.embeddings.position_embedding.weight"),
        .init("ln_final.{p}", "text_model.final_layer_norm.{p}"),
        .init("text_projection", "text_projection.weight", .transpose),
        .init("logit_scale", "logit_scale", .drop),
        .init("transformer.resblocks.{i}.attn.in_proj_weight", ["text_model.encoder.layers.{i}.self_attn.q_proj.weight",
                                                               "text_model.encoder.layers.{i}.self_attn.k_proj.weight",
                                                               "text_model.encoder.layers.{i}.self_attn.v_proj.weight"], .split),
        .init("transformer.resblocks.{i}.attn.in_proj_bias", ["text_model.encoder.layers.{i}.self_attn.q_proj.bias",
                                                             "text_model.encoder.layers.{i}.self_attn.k_proj.bias",
                                                             "text_model.encoder.layers.{i}.self_attn.v_proj.bias"], .split),
        .init("transformer.resblocks.{i}.attn.out_proj.{p}", "text_model.encoder.layers.{i}.self_attn.out_proj.{p}"),
        .init("transformer.resblocks.{i}.ln_1.{p}", "text_model.encoder.layers.{i}.layer_norm1.{p}"),
        .init("transformer.resblocks.{i}.ln_2.{p}", "text_model.encoder.layers.{i}.layer_norm2.{p}"),
        .init("transformer.resblocks.{i}.mlp.c_fc.{p}", "text_model.encoder.layers.{i}.mlp.fc1.{p}"),
        .init("transformer.resblocks.{i}.mlp.c_proj.{p}", "text_model.encoder.layers.{i}.mlp.fc2.{p}"),
    ]

    /// CLIP-L: SD3 uses its pooled output unprojected, so any stored projection is ignored and the identity
    /// used, as diffusers (`text_projection.weight = torch.eye(768)`) and ComfyUI (`return_projected_pooled=False`) do.
    public static let clipL = KeyMap(
        [.init("text_projection.weight", "text_projection.weight", .drop), .init("text_projection", "text_projection", .drop)]
            + openCLIP.filter { !$0.source.hasPrefix("text_projection") } + [.init("{*}", "{*}")],
        identities: [.init("text_projection.weight", sizeOf: "text_model.final_layer_norm.weight")])

    /// CLIP-G (OpenCLIP bigG, as transformers names or OpenCLIP names), with its real projection.
    public static let clipG = KeyMap(openCLIP + [.init("{*}", "{*}")])

    /// T5-XXL encoder: transformers names as stored.
    public static let t5 = KeyMap([.init("{*}", "{*}")])
}

/// The weight-bearing components of a diffusers SD3 folder, named by their folders.
public enum SD3Component: String, Sendable, CaseIterable, Hashable {
    case transformer, vae
    case textEncoder = "text_encoder", textEncoder2 = "text_encoder_2", textEncoder3 = "text_encoder_3"

    /// What users call it (and the flag that supplies it as a separate file).
    public var label: String {
        switch self {
        case .transformer: return "MMDiT"
        case .vae: return "VAE"
        case .textEncoder: return "CLIP-L"
        case .textEncoder2: return "CLIP-G"
        case .textEncoder3: return "T5-XXL"
        }
    }
}
