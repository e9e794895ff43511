import Foundation
import SafeTensors
import Tensors
import Tokenizers

/// `sd3 convert`: a single-file model written out as a diffusers folder (model_index.json, one folder per
/// component with config.json and weights under diffusers names, the tokenizers), which diffusers and this app open.
public enum DiffusersConverter {
    /// Writes into a hidden folder beside `folder` and renames it at the end: on any error nothing is left behind,
    /// and `folder` appears whole or not at all.
    public static func convert(_ source: ModelSource, to folder: String, progress: (String) -> Void = { _ in }) throws {
        guard case let .singleFile(parts, _) = source.layout else { throw ModelSourceError.notSingleFile(path: source.path) }
        guard !FileManager.default.fileExists(atPath: folder) else { throw ModelSourceError.outputExists(path: folder) }
        try requireEveryKeyKnown(parts)
        let target = URL(fileURLWithPath: folder)
        let temp = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).\(getpid()).partial").path
        try? FileManager.default.removeItem(atPath: temp)
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: false)
        do {
            try write(parts, source: source, into: temp, progress: progress)
            guard !FileManager.default.fileExists(atPath: folder) else { throw ModelSourceError.outputExists(path: folder) }
            try FileManager.default.moveItem(atPath: temp, toPath: folder)
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
    }

    /// Every tensor of every checkpoint file belongs to a component this model has (its prefix, or a bare encoder
    /// file's whole content): a renamed or foreign key would otherwise be dropped without a word.
    static func requireEveryKeyKnown(_ parts: [SD3Component: SingleFileCheckpoint]) throws {
        var prefixes: [String: [String]] = [:]  // file → its parts' prefixes
        for (component, checkpoint) in parts {
            guard let part = checkpoint.parts[component] else { continue }
            prefixes[checkpoint.path, default: []].append(part.prefix)
        }
        for (path, known) in prefixes.sorted(by: { $0.key < $1.key }) {
            guard let file = parts.values.first(where: { $0.path == path })?.parts.values.first?.file else { continue }
            let unknown = file.names.filter { name in !known.contains { name.hasPrefix($0) } }.sorted()
            if !unknown.isEmpty { throw SafeTensorsError.unusedKeys(path: path, keys: unknown, total: unknown.count) }
        }
    }

    /// The whole diffusers folder's content, into `temp`.
    static func write(_ parts: [SD3Component: SingleFileCheckpoint], source: ModelSource, into temp: String, progress: (String) -> Void) throws {
        var index: [String: Any] = ["_class_name": "StableDiffusion3Pipeline", "_diffusers_version": "0.42.1",
                                    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                                    "feature_extractor": [NSNull(), NSNull()], "image_encoder": [NSNull(), NSNull()]]
        let classes: [SD3Component: (String, String)] = [
            .transformer: ("diffusers", "SD3Transformer2DModel"), .vae: ("diffusers", "AutoencoderKL"),
            .textEncoder: ("transformers", "CLIPTextModelWithProjection"), .textEncoder2: ("transformers", "CLIPTextModelWithProjection"),
            .textEncoder3: ("transformers", "T5EncoderModel"),
        ]
        for component in SD3Component.allCases {
            guard let part = parts[component] else {
                index[component.rawValue] = [NSNull(), NSNull()]
                continue
            }
            progress("writing \(component.rawValue)")
            let weights = try part.weights(component)
            let unmatched = weights.unmatchedKeys
            if !unmatched.isEmpty { throw SafeTensorsError.unusedKeys(path: weights.source, keys: unmatched, total: unmatched.count) }
            try StructureCheck.check(component, weights, source: source)
            let config = try self.config(component, source: source)
            let name = component == .transformer || component == .vae ? "diffusion_pytorch_model.safetensors" : "model.safetensors"
            try write(weights, to: temp + "/" + component.rawValue, file: name, config: config)
            index[component.rawValue] = [classes[component]!.0, classes[component]!.1]
        }
        try json(["_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000,
                  "shift": (try source.schedulerConfig()).shift], to: temp + "/scheduler/scheduler_config.json")
        let tokenizers = try source.tokenizerFolders(useT5: parts[.textEncoder3] != nil)
        for (name, url, pad) in [("tokenizer", tokenizers.clipL, "<|endoftext|>"), ("tokenizer_2", tokenizers.clipG, "!")] {
            if let url { try FileManager.default.copyItem(atPath: url.path, toPath: temp + "/" + name) } else { try bundledCLIP(to: temp + "/" + name, pad: pad) }
            index[name] = ["transformers", "CLIPTokenizer"]
        }
        if let t5 = tokenizers.t5 {
            try FileManager.default.createDirectory(atPath: temp + "/tokenizer_3", withIntermediateDirectories: true)
            for file in ["spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
            where FileManager.default.fileExists(atPath: t5.path + "/" + file) {
                try FileManager.default.copyItem(atPath: t5.path + "/" + file, toPath: temp + "/tokenizer_3/" + file)
            }
            index["tokenizer_3"] = ["transformers", "T5Tokenizer"]
        } else {
            index["tokenizer_3"] = [NSNull(), NSNull()]
        }
        try json(index, to: temp + "/model_index.json")
    }

    /// Weights in their stored precision (F32, F16, BF16; 8-bit floats widen to F16 without loss).
    static func write(_ weights: MappedWeights, to folder: String, file: String, config: [String: Any]) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        for key in weights.keys {
            let shape = weights.shape(of: key)!
            let tensor = try weights.tensor(key, shape: shape)
            let stored = weights.dtype(of: key) ?? .f32
            writer.entries.append(.init(key, tensor, as: stored == .f32 || stored == .bf16 ? stored : .f16))
        }
        try writer.write(to: folder + "/" + file)
        try json(config, to: folder + "/config.json")
    }

    static func config(_ component: SD3Component, source: ModelSource) throws -> [String: Any] {
        switch component {
        case .transformer:
            let c = try source.transformerConfig()
            return ["_class_name": "SD3Transformer2DModel", "sample_size": c.sampleSize, "patch_size": c.patchSize,
                    "in_channels": c.inChannels, "out_channels": c.outChannels, "num_layers": c.numLayers,
                    "attention_head_dim": c.attentionHeadDim, "num_attention_heads": c.numAttentionHeads,
                    "joint_attention_dim": c.jointAttentionDim, "caption_projection_dim": c.captionProjectionDim,
                    "pooled_projection_dim": c.pooledProjectionDim, "pos_embed_max_size": c.posEmbedMaxSize,
                    "dual_attention_layers": c.dualAttentionLayers, "qk_norm": c.qkNorm.map { $0 as Any } ?? NSNull()]
        case .vae:
            let c = try source.vaeConfig()
            return ["_class_name": "AutoencoderKL", "in_channels": c.inChannels, "out_channels": c.outChannels,
                    "latent_channels": c.latentChannels, "block_out_channels": c.blockOutChannels, "layers_per_block": c.layersPerBlock,
                    "norm_num_groups": c.normNumGroups, "scaling_factor": c.scalingFactor, "shift_factor": c.shiftFactor.map { $0 as Any } ?? NSNull(),
                    "use_quant_conv": c.useQuantConv, "use_post_quant_conv": c.usePostQuantConv,
                    "mid_block_add_attention": c.midBlockAddAttention, "down_block_types": c.downBlockTypes, "up_block_types": c.upBlockTypes,
                    "act_fn": "silu", "force_upcast": true]
        case .textEncoder, .textEncoder2:
            let c = try source.clipConfig(component)
            return ["architectures": ["CLIPTextModelWithProjection"], "model_type": "clip_text_model", "vocab_size": c.vocabSize,
                    "hidden_size": c.hiddenSize, "intermediate_size": c.intermediateSize, "projection_dim": c.projectionDim,
                    "num_hidden_layers": c.numHiddenLayers, "num_attention_heads": c.numAttentionHeads,
                    "max_position_embeddings": c.maxPositionEmbeddings, "hidden_act": c.hiddenAct, "layer_norm_eps": c.layerNormEps,
                    "bos_token_id": 49406, "eos_token_id": c.eosTokenId, "pad_token_id": 1]
        case .textEncoder3:
            let c = try source.t5Config()
            return ["architectures": ["T5EncoderModel"], "model_type": "t5", "vocab_size": c.vocabSize, "d_model": c.dModel,
                    "d_kv": c.dKv, "d_ff": c.dFf, "num_layers": c.numLayers, "num_heads": c.numHeads,
                    "relative_attention_num_buckets": c.relativeAttentionNumBuckets,
                    "relative_attention_max_distance": c.relativeAttentionMaxDistance, "layer_norm_epsilon": c.layerNormEpsilon,
                    "feed_forward_proj": c.feedForwardProj, "dense_act_fn": "gelu_new", "is_gated_act": true, "tie_word_embeddings": false]
        }
    }

    /// The shipped CLIP vocabulary as a transformers tokenizer folder (vocab.json, merges.txt, tokenizer_config.json).
    static func bundledCLIP(to folder: String, pad: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let files = try CLIPVocabularyFiles.bundled()
        try json(files.vocab, to: folder + "/vocab.json")
        try files.merges.write(toFile: folder + "/merges.txt", atomically: true, encoding: .utf8)
        try json(["tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
                  "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": pad], to: folder + "/tokenizer_config.json")
    }

    static func json(_ object: Any, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    }
}
