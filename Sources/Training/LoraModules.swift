import Foundation
import SafeTensors
import SD3

/// The Linear layers of diffusers' SD3Transformer2DModel in `named_modules()` order (0.42.1: registration order of
/// SD3Transformer2DModel, JointTransformerBlock, Attention, FeedForward), which is the order peft injects adapters
/// in and so the order their initial weights are drawn from the generator.
public enum TransformerLinears {
    static let head = ["time_text_embed.timestep_embedder.linear_1", "time_text_embed.timestep_embedder.linear_2",
                       "time_text_embed.text_embedder.linear_1", "time_text_embed.text_embedder.linear_2", "context_embedder"]
    static let block = ["norm1.linear", "norm1_context.linear",
                        "attn.to_q", "attn.to_k", "attn.to_v", "attn.add_k_proj", "attn.add_v_proj", "attn.add_q_proj",
                        "attn.to_out.0", "attn.to_add_out", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
                        "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2"]
    static let tail = ["norm_out.linear", "proj_out"]

    /// Every Linear whose weight [out, in] the transformer file holds, in module order.
    public static func list(_ file: SafeTensorsFile) -> [(name: String, inFeatures: Int, outFeatures: Int)] {
        var blocks = 0
        for name in file.names where name.hasPrefix("transformer_blocks.") {
            if let index = Int(name.dropFirst("transformer_blocks.".count).prefix { $0.isNumber }) { blocks = max(blocks, index + 1) }
        }
        let names = head + (0..<blocks).flatMap { b in block.map { "transformer_blocks.\(b).\($0)" } } + tail
        return names.compactMap { name in
            guard let info = file.info(name + ".weight"), info.shape.count == 2 else { return nil }
            return (name, info.shape[1], info.shape[0])
        }
    }
}

extension TransformerLinears {
    /// The same list from any weight provider (a diffusers folder, its shards or a single-file checkpoint mapped to
    /// diffusers names), for a transformer of `layers` blocks: the shapes come from the headers alone.
    public static func list(_ weights: any WeightProvider, layers: Int) -> [(name: String, inFeatures: Int, outFeatures: Int)] {
        let names = head + (0..<layers).flatMap { b in block.map { "transformer_blocks.\(b).\($0)" } } + tail
        return names.compactMap { name in
            guard let shape = weights.shape(of: name + ".weight"), shape.count == 2 else { return nil }
            return (name, shape[1], shape[0])
        }
    }
}

extension TransformerLinears {
    /// The same list from the config alone, for weights that have no headers (RandomWeights): the shapes
    /// TrainableSD3Transformer asks for. The last block is context_pre_only (norm1_context → 2·D, no to_add_out nor
    /// ff_context); dual-attention blocks have norm1 → 9·D and attn2.
    public static func list(config c: SD3TransformerConfig) -> [(name: String, inFeatures: Int, outFeatures: Int)] {
        let d = c.width
        var all: [(String, Int, Int)] = [("time_text_embed.timestep_embedder.linear_1", 256, d), ("time_text_embed.timestep_embedder.linear_2", d, d),
                                         ("time_text_embed.text_embedder.linear_1", c.pooledProjectionDim, d),
                                         ("time_text_embed.text_embedder.linear_2", d, d), ("context_embedder", c.jointAttentionDim, d)]
        for b in 0..<c.numLayers {
            let (last, dual) = (b == c.numLayers - 1, c.dualAttentionLayers.contains(b))
            let shapes: [String: (Int, Int)] = [
                "norm1.linear": (d, (dual ? 9 : 6) * d), "norm1_context.linear": (d, (last ? 2 : 6) * d),
                "ff.net.0.proj": (d, 4 * d), "ff.net.2": (4 * d, d), "ff_context.net.0.proj": (d, 4 * d), "ff_context.net.2": (4 * d, d),
            ]
            for name in block {
                if last && (name == "attn.to_add_out" || name.hasPrefix("ff_context.")) { continue }
                if !dual && name.hasPrefix("attn2.") { continue }
                let (i, o) = shapes[name] ?? (d, d)  // the attention projections
                all.append(("transformer_blocks.\(b).\(name)", i, o))
            }
        }
        all += [("norm_out.linear", d, 2 * d), ("proj_out", d, c.patchSize * c.patchSize * c.outChannels)]
        return all
    }
}
