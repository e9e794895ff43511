import Foundation
import SafeTensors

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
