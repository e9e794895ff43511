import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// `sd3 models convert` on broken checkpoints (hostile input, docs/testing.md): a qkv that does not split in three, a
/// renamed, missing or foreign key are errors naming the key, and no `.partial` folder (or output) is left behind.
@Suite struct HostileConvertTests {
    static let checkpoint = SingleFileTests.files + "/sd35-incl-clips-t5xxlfp16.safetensors"
    static let qkv = "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"

    @Test func brokenCheckpointsLeaveNothingBehind() throws {
        let cases: [(String, (String, Tensor) -> (String, Tensor)?, [String])] = [
            ("qkv not divisible by 3", { n, t in
                guard n == Self.qkv else { return (n, t) }
                let rows = t.shape[0] - 1, columns = t.shape[1]
                return (n, Tensor(shape: [rows, columns], data: Array(t.data.prefix(rows * columns))))
            }, ["broken.safetensors", "joint_blocks.0.x_block.attn.qkv.weight", "3 equal parts"]),
            ("renamed key", { n, t in (n == Self.qkv ? n.replacingOccurrences(of: "qkv.weight", with: "qkv_fused.weight") : n, t) },
             ["qkv_fused.weight", "not used"]),
            ("key of no component", { n, t in (n == Self.qkv ? "optimizer.state.0" : n, t) }, ["optimizer.state.0", "not used"]),
            ("missing MMDiT key", { n, t in n == Self.qkv ? nil : (n, t) }, ["missing weight 'transformer_blocks.0.attn.to_q.weight'"]),
            ("missing VAE key", { n, t in n == "first_stage_model.decoder.up.0.block.0.conv2.bias" ? nil : (n, t) },
             ["missing weight 'decoder.up_blocks.1.resnets.0.conv2.bias'"]),
            ("missing T5 key", { n, t in n == "text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.o.weight" ? nil : (n, t) },
             ["missing weight 'encoder.block.0.layer.0.SelfAttention.o.weight'"]),
        ]
        for (label, edit, fragments) in cases {
            let temp = Hostile.temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: temp) }
            let path = temp + "/broken.safetensors"
            try Hostile.rewrite(Self.checkpoint, to: path, edit)
            let output = temp + "/converted"
            Hostile.expectError(label, fragments) {
                let source = try ModelSource(path, extras: .init(config: SingleFileTests.referenceFolder(sd35: true)))
                try DiffusersConverter.convert(source, to: output)
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: temp)
            #expect(left == ["broken.safetensors"], "\(label): left \(left)")
        }
    }

    /// The unedited checkpoint: the folder appears whole under its name and nothing else is left beside it.
    @Test func theUneditedCheckpointConvertsIntoTheTargetOnly() throws {
        let temp = Hostile.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: temp) }
        let source = try ModelSource(Self.checkpoint, extras: .init(config: SingleFileTests.referenceFolder(sd35: true)))
        try DiffusersConverter.convert(source, to: temp + "/converted")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp) == ["converted"])
        #expect(FileManager.default.fileExists(atPath: temp + "/converted/model_index.json"))
    }
}
