import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// Configs that `sd3 info` reads but no model can be built from (hostile input, docs/testing.md): each is refused
/// when the model opens, with one line naming the file and the key, never a trap (range, division by zero, a 1.4 TB
/// allocation).
@Suite struct HostileConfigTests {
    struct Case: Sendable, CustomStringConvertible {
        let component: String, file: String, key: String, literal: String?, fragment: String
        init(_ component: String, _ key: String, _ literal: String?, _ fragment: String, file: String = "config.json") {
            (self.component, self.key, self.literal, self.fragment, self.file) = (component, key, literal, fragment, file)
        }
        var description: String { "\(component)/\(file) \(key): \(literal ?? "missing")" }
    }

    static let cases: [Case] = [
        Case("transformer", "num_layers", "-1", "num_layers is -1"),
        Case("transformer", "num_layers", "1e9", "num_layers is 1000000000"),
        Case("transformer", "num_layers", "1e300", "'num_layers' is out of range"),
        Case("transformer", "patch_size", "0", "patch_size is 0"),
        Case("transformer", "pos_embed_max_size", "4294967296", "pos_embed_max_size is 4294967296"),
        Case("transformer", "num_attention_heads", "0", "num_attention_heads is 0"),
        Case("transformer", "dual_attention_layers", "[5]", "dual_attention_layers entry is 5"),
        Case("vae", "block_out_channels", "[]", "block_out_channels' length is 0"),
        Case("vae", "norm_num_groups", "0", "norm_num_groups is 0"),
        Case("vae", "norm_num_groups", "3", "norm_num_groups 3 does not divide block_out_channels entry 8"),
        Case("vae", "norm_num_groups", "-1", "norm_num_groups is -1"),
        Case("vae", "norm_num_groups", nil, "norm_num_groups 32 does not divide block_out_channels entry 8"),
        Case("vae", "scaling_factor", "0", "scaling_factor is 0.0"),
        Case("vae", "scaling_factor", "1e-40", "scaling_factor"),
        Case("vae", "shift_factor", "1e39", "'shift_factor' is out of range"),
        Case("vae", "layers_per_block", "-1", "layers_per_block is -1"),
        Case("vae", "latent_channels", "4", "latent_channels 4 differ from the transformer's in_channels 16"),
        Case("text_encoder", "num_attention_heads", "0", "num_attention_heads is 0"),
        Case("text_encoder", "num_attention_heads", "3", "num_attention_heads 3 does not divide hidden_size 32"),
        Case("text_encoder_2", "num_hidden_layers", "1e9", "num_hidden_layers is 1000000000"),
        Case("text_encoder_2", "max_position_embeddings", "10", "max_position_embeddings is 10"),
        Case("text_encoder_2", "layer_norm_eps", "-1", "layer_norm_eps is -1.0"),
        Case("text_encoder_3", "num_layers", "1e9", "num_layers is 1000000000"),
        Case("text_encoder_3", "num_heads", "0", "num_heads is 0"),
        Case("text_encoder_3", "relative_attention_num_buckets", "0", "relative_attention_num_buckets is 0"),
        Case("text_encoder_3", "relative_attention_num_buckets", "3", "relative_attention_num_buckets is 3"),
        Case("text_encoder_3", "relative_attention_max_distance", "2", "relative_attention_max_distance is 2"),
        Case("scheduler", "shift", "1e-320", "shift 1e-320", file: "scheduler_config.json"),
        Case("scheduler", "shift", "0", "shift 0", file: "scheduler_config.json"),
        Case("scheduler", "num_train_timesteps", "1", "num_train_timesteps is 1", file: "scheduler_config.json"),
        Case("scheduler", "base_image_seq_len", "4096", "they must differ by at least 1", file: "scheduler_config.json"),
        Case("tokenizer", "model_max_length", "-1", "model_max_length is -1", file: "tokenizer_config.json"),
        Case("tokenizer_2", "model_max_length", "0", "model_max_length is 0", file: "tokenizer_config.json"),
        Case("tokenizer_3", "extra_ids", "1e18", "extra_ids", file: "tokenizer_config.json"),
    ]

    @Test(arguments: cases) func badConfigIsOneNamedError(c: Case) throws {
        let folder = try Hostile.tinyCopy()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/" + c.component + "/" + c.file
        if let literal = c.literal { try Hostile.setLiteral(path, c.key, literal) } else { try Hostile.setJSON(path, c.key, nil) }
        // The cross-component check names the model folder, every other check the file.
        let named = c.fragment.contains("differ from") ? folder : path
        Hostile.expectError("\(c)", [named, c.fragment]) { _ = try Hostile.open(folder) }
    }

    /// The unedited copy opens: the checks above refuse the edit, not the fixture.
    @Test func theFixtureItselfOpens() throws {
        let folder = try Hostile.tinyCopy()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try Hostile.open(folder)
    }

    /// A config that is a folder, a FIFO or a device is refused without opening it (a FIFO would block forever).
    @Test(.timeLimit(.minutes(10))) func configThatIsNotAFileIsRefused() throws {
        for kind in ["folder", "fifo", "device"] {
            let folder = try Hostile.tinyCopy()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let path = folder + "/vae/config.json"
            try FileManager.default.removeItem(atPath: path)
            switch kind {
            case "folder": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            case "fifo": Hostile.mkfifo(path)
            default: try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero")
            }
            Hostile.expectError(kind, [path, "not a regular file"]) { _ = try Hostile.open(folder) }
        }
    }

    /// Weight files that are FIFOs or /dev/zero: refused by stat before any open.
    @Test(.timeLimit(.minutes(10))) func weightsThatAreNotFilesAreRefused() throws {
        for kind in ["fifo", "device"] {
            let folder = try Hostile.tinyCopy()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let path = folder + "/transformer/diffusion_pytorch_model.safetensors"
            try FileManager.default.removeItem(atPath: path)
            if kind == "fifo" { Hostile.mkfifo(path) } else { try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero") }
            Hostile.expectError(kind, [path, "not a regular file"]) { _ = try Hostile.open(folder) }
            Hostile.expectError(kind + " as a single file", [path, "not a regular file"]) { _ = try ModelSource(path) }
        }
    }

    /// More weights than this machine's memory: refused from the header's shapes before anything is decoded.
    @Test func weightsLargerThanMemoryAreRefused() throws {
        final class Huge: WeightProvider {
            let source = "huge.safetensors"
            func contains(_ key: String) -> Bool { key == "w" }
            func tensor(_ key: String, shape: [Int]) throws(SafeTensorsError) -> Tensor { throw .missingKey(path: source, key: key) }
            func markUsed(_ key: String) {}
            var unusedKeys: [String] { ["w", "v"] }
            func shape(of key: String) -> [Int]? { key == "w" ? [1 << 20, 1 << 20] : [Int.max, 2] }
        }
        Hostile.expectError("huge", ["huge.safetensors", "more than this machine's"]) {
            try StableDiffusion3Pipeline.requireFits(Huge(), bytesPerWeight: 4)
        }
        let weights = try ComponentFolder(Hostile.tiny + "/transformer").weights()
        try StableDiffusion3Pipeline.requireFits(weights, bytesPerWeight: 4)
    }
}
