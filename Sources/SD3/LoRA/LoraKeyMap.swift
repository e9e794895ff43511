import SafeTensors

/// Where a LoRA module name (the key without `.lora_A.weight` & co.) points in our models, for the four layouts.
/// diffusers names and a PEFT folder's (`base_model.model.` + the transformer's module) are ours already; kohya
/// sd-scripts and ComfyUI name Stability's modules, which go through `SingleFileKeyMap` (kohya with `.` written `_`). Sources: diffusers 0.42.1 `loaders/lora_conversion_utils.py`
/// (`_convert_non_diffusers_sd3_lora_to_diffusers`) and `loaders/lora_pipeline.py` (`SD3LoraLoaderMixin`).
enum LoraKeyMap {
    enum Layout: String, Sendable { case diffusers, kohya, comfyUI = "ComfyUI", peft = "PEFT" }

    /// (layout, module-name prefix, component). Kohya: te1 is CLIP-L, te2 CLIP-G (sd-scripts `sd3_train_network.py`).
    static let prefixes: [(Layout, String, SD3Component)] = [
        (.diffusers, "transformer.", .transformer), (.diffusers, "text_encoder.", .textEncoder),
        (.diffusers, "text_encoder_2.", .textEncoder2), (.peft, LoraPeftFolder.keyPrefix, .transformer),
        (.kohya, "lora_unet_", .transformer), (.kohya, "lora_te1_", .textEncoder), (.kohya, "lora_te2_", .textEncoder2),
        (.comfyUI, "model.diffusion_model.", .transformer), (.comfyUI, "diffusion_model.", .transformer),
    ] + SingleFileKeyMap.prefixes.filter { $0.0 == .textEncoder || $0.0 == .textEncoder2 }.map { (.comfyUI, $0.1, $0.0) }

    /// The tensor-name endings of one module's pair: (down/A, up/B) spellings, and kohya's alpha.
    static let downSuffixes = [".lora_A.weight", ".lora_down.weight"]
    static let upSuffixes = [".lora_B.weight", ".lora_up.weight"]
    static let alphaSuffix = ".alpha"

    /// The linear layers of transformers' CLIPTextModel (the names diffusers' `text_encoder.` keys use), for kohya's
    /// underscored names, which a catch-all rule cannot split back into segments.
    static let clipModules = ["text_model.encoder.layers.{i}.self_attn.q_proj", "text_model.encoder.layers.{i}.self_attn.k_proj",
                              "text_model.encoder.layers.{i}.self_attn.v_proj", "text_model.encoder.layers.{i}.self_attn.out_proj",
                              "text_model.encoder.layers.{i}.mlp.fc1", "text_model.encoder.layers.{i}.mlp.fc2", "text_projection"]

    /// A resolver from a module name (no prefix) to diffusers module names and the transform of its up matrix.
    typealias Resolver = (String) -> (targets: [String], transform: KeyMap.Transform)?

    static func resolver(_ layout: Layout, _ component: SD3Component) -> Resolver {
        switch (layout, component) {
        case (.diffusers, _), (.peft, _):
            return { ([$0], .none) }
        case (.comfyUI, _):
            return moduleResolver(SingleFileKeyMap.map(for: component).resolver())
        case (.kohya, .transformer):
            return moduleResolver(underscored(SingleFileKeyMap.mmdit).resolver())
        case (.kohya, _):
            let rules = clipModules.map { KeyMap.Rule(kohyaName($0) + ".{p}", $0 + ".{p}") }
            return moduleResolver(KeyMap(rules).resolver())
        }
    }

    /// Resolves `module.weight` through a weight-key map and drops `.weight` again.
    static func moduleResolver(_ resolve: @escaping (String) -> (targets: [String], transform: KeyMap.Transform)?) -> Resolver {
        return { module in
            guard let (targets, transform) = resolve(module + ".weight"), targets.allSatisfy({ $0.hasSuffix(".weight") }) else { return nil }
            return (targets.map { String($0.dropLast(".weight".count)) }, transform)
        }
    }

    /// The map's `….{p}` rules with the module part written as kohya does (`joint_blocks_{i}_x_block_attn_qkv.{p}`).
    static func underscored(_ map: KeyMap) -> KeyMap {
        KeyMap(map.rules.filter { $0.source.hasSuffix(".{p}") }.map {
            KeyMap.Rule(kohyaName(String($0.source.dropLast(4))) + ".{p}", $0.targets, $0.transform)
        })
    }

    static func kohyaName(_ module: String) -> String { module.replacingOccurrences(of: ".", with: "_") }

    /// Key fragments of other base models' LoRAs (diffusers' and kohya's names for them), checked before anything else.
    static let foreignMarkers: [(fragment: String, model: String)] = [
        ("double_blocks", "Flux"), ("single_blocks", "Flux"), ("single_transformer_blocks", "Flux"),
        ("input_blocks", "SDXL/SD1.x (UNet)"), ("output_blocks", "SDXL/SD1.x (UNet)"), ("middle_block", "SDXL/SD1.x (UNet)"),
        ("down_blocks", "SDXL/SD1.x (UNet)"), ("up_blocks", "SDXL/SD1.x (UNet)"), ("mid_block", "SDXL/SD1.x (UNet)"),
        ("lora_te_", "SD1.x (one text encoder)"),
    ]

    /// The base model a transformer width belongs to (`hidden_size` = 64 × depth), for shape-mismatch messages.
    static func modelWithWidth(_ width: Int) -> String? {
        switch width {
        case 1536: return "SD3 Medium / SD3.5 Medium"
        case 2432: return "SD3.5 Large"
        case 3072: return "Flux"
        default: return nil
        }
    }
}
