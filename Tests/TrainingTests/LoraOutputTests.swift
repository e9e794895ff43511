import Foundation
import SafeTensors
import SD3
import Testing
@testable import Training

/// The LoRA we write against the file diffusers 0.42.1 writes (scripts/fixtures/lora_train_output.py, tiny SD3
/// transformer, the script's target modules, rank 4), and peft's initial weights.
@Suite struct LoraOutputTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_train_output", withExtension: "safetensors")!.path)
    /// The tiny pipeline's transformer, shared with SD3Tests' fixtures.
    static let transformerPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SD3Tests/Fixtures/tiny-sd3/transformer/diffusion_pytorch_model.safetensors").path

    static func folder(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "sd3-training-tests/" + name
        try? FileManager.default.removeItem(atPath: path)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func freshLora() throws -> TrainableLora {
        let linears = TransformerLinears.list(try SafeTensorsFile(path: transformerPath))
        var generator = TorchCPUGenerator(seed: 0)
        return try TrainableLora(rank: 4, alpha: 4, targets: TrainableLora.defaultTargets, linears: linears, generator: &generator)
    }

    @Test func initialWeightsAreThoseOfPeft() throws {
        let lora = try Self.freshLora()
        let order = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["modules"]!.utf8)) as! [String]
        #expect(lora.modules.map(\.name) == order)
        for m in lora.modules {
            #expect(m.down == (try Self.reference.tensor("initial.\(m.name).lora_A.weight")).data, "\(m.name) lora_A")
            #expect(m.up == (try Self.reference.tensor("initial.\(m.name).lora_B.weight")).data, "\(m.name) lora_B")
        }
    }

    /// SD3.5-style blocks (dual attention, qk norm): every Linear in diffusers' module order, and peft's initial
    /// weights for `--lora-layers` beyond the defaults (attn2, feed-forward, adaLN, embedders, proj_out).
    @Test func sd35LinearsAndWiderTargets() throws {
        let path = URL(fileURLWithPath: Self.transformerPath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("diffusers-dummy-sd35-transformer/diffusion_pytorch_model.safetensors").path
        let linears = TransformerLinears.list(try SafeTensorsFile(path: path))
        let expected = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["sd35_linears"]!.utf8)) as! [[Any]]
        #expect(linears.map { "\($0.name) \($0.inFeatures) \($0.outFeatures)" } == expected.map { "\($0[0]) \($0[1]) \($0[2])" })
        let targets = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["sd35_targets"]!.utf8)) as! [String]
        var generator = TorchCPUGenerator(seed: 3)
        let lora = try TrainableLora(rank: 3, alpha: 6, targets: targets, linears: linears, generator: &generator)
        let stored = Set(Self.reference.names.filter { $0.hasPrefix("sd35.initial.") && $0.hasSuffix(".lora_A.weight") })
        #expect(Set(lora.modules.map { "sd35.initial.\($0.name).lora_A.weight" }) == stored)
        for m in lora.modules {
            #expect(m.down == (try Self.reference.tensor("sd35.initial.\(m.name).lora_A.weight")).data, "\(m.name) lora_A")
            #expect(m.up.allSatisfy { $0 == 0 } && m.up.count == m.outFeatures * 3)
        }
    }

    @Test func writtenFileIsDiffusersLayout() throws {
        var lora = try Self.freshLora()
        for m in lora.modules.indices {
            lora.modules[m].down = try Self.reference.tensor("transformer.\(lora.modules[m].name).lora_A.weight").data
            lora.modules[m].up = try Self.reference.tensor("transformer.\(lora.modules[m].name).lora_B.weight").data
        }
        let path = Self.folder("output") + "/lora.safetensors"
        try lora.write(to: path)
        let ours = try SafeTensorsFile(path: path)
        let theirs = Self.reference.names.filter { $0.hasPrefix("transformer.") }
        #expect(Set(ours.names) == Set(theirs))
        for name in theirs {
            let (a, b) = (try ours.tensor(name), try Self.reference.tensor(name))
            #expect(a.shape == b.shape && a.data == b.data, "\(name)")
        }
        #expect(ours.metadata["format"] == "pt")
        // Every field we write has diffusers' value (it writes all of peft's LoraConfig; target_modules is a set).
        let mine = try JSONSerialization.jsonObject(with: Data(ours.metadata["lora_adapter_metadata"]!.utf8)) as! [String: Any]
        let full = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["lora_adapter_metadata"]!.utf8)) as! [String: Any]
        for (key, value) in mine {
            if key == "transformer.target_modules" {
                #expect(Set(value as! [String]) == Set(full[key] as! [String]))
            } else {
                #expect(full[key].map { "\($0)" } == "\(value)", "\(key): \(value) vs \(full[key] ?? "missing")")
            }
        }
        // Our own loader (`--lora`) reads it with scale alpha / r = 1.
        let loaded = try LoraFile(path: path)
        let pairs = loaded.pairs[.transformer] ?? [:]
        #expect(pairs.count == lora.modules.count)
        for m in lora.modules {
            let pair = pairs[m.name + ".weight"]
            #expect(pair?.down.data == m.down && pair?.up.data == m.up && pair?.scale == 1, "\(m.name) as loaded by LoraFile")
        }
        // bf16 halves the tensors and still loads.
        try lora.write(to: path + ".bf16", dtype: .bf16)
        let bf16 = try SafeTensorsFile(path: path + ".bf16")
        #expect(bf16.info(theirs[0])?.dtype == .bf16)
        _ = try LoraFile(path: path + ".bf16")
    }

    @Test func alphaOtherThanRankIsInTheMetadata() throws {
        let linears = TransformerLinears.list(try SafeTensorsFile(path: Self.transformerPath))
        var generator = TorchCPUGenerator(seed: 3)
        let lora = try TrainableLora(rank: 4, alpha: 8, targets: ["to_q", "attn.to_v"], linears: linears, generator: &generator)
        #expect(lora.modules.count == 4 && lora.modules.allSatisfy { $0.name.hasSuffix("to_q") || $0.name.hasSuffix("attn.to_v") })
        let path = Self.folder("alpha") + "/lora.safetensors"
        try lora.write(to: path)
        let loaded = try LoraFile(path: path)
        #expect(loaded.pairs[.transformer]!.values.allSatisfy { $0.scale == 2 })
        #expect(throws: TrainingError.self) {
            try TrainableLora(rank: 4, alpha: 4, targets: ["attn.to_nothing"], linears: linears, generator: &generator)
        }
    }
}
