import Foundation
import ImageIO
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// A LoRA on every adaLN modulation layer with peft's alpha/rank patterns in diffusers' `lora_adapter_metadata`
/// (scripts/fixtures/lora_norms.py) against diffusers 0.42.1 + peft: the metadata's per-module scales, and, in the
/// kohya and ComfyUI layouts, the (shift, scale) halves of the last context block and the final layer swapped back.
@Suite struct LoraNormsTests {
    static let reference = try! SafeTensorsFile(path: LoraTests.folder + "/reference_norms.safetensors")
    // Read once, never written.
    nonisolated(unsafe) static let cases = try! JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[String: Any]]

    static func choice(_ index: Int, layout: String) -> [LoraChoice] {
        let loras = cases[index]["loras"] as! [String: NSNumber]
        return loras["norms"].map { [LoraChoice(path: LoraTests.folder + "/norms.\(layout).safetensors", strength: $0.doubleValue)] } ?? []
    }

    static func expectMatch(_ image: RGBImage, case index: Int, _ label: String) throws {
        try LoraTests.expectMatch(image, case: index, label, reference: reference, cases: cases)
    }

    @Test(arguments: ["diffusers", "kohya", "comfyui"])
    func mergedAndRunTimeMatchDiffusers(layout: String) throws {
        #expect(Self.cases[0]["prompt"] as? String == LoraTests.cases[0]["prompt"] as? String)  // LoraTests.generate's settings
        let runTime = try StableDiffusion3Pipeline(path: LoraTests.fixtures + "/tiny-sd3", options: LoraTests.options(mode: .runTime))
        try Self.expectMatch(try LoraTests.generate(runTime), case: 0, "base")
        for index in Self.cases.indices.dropFirst() {
            let merged = try StableDiffusion3Pipeline(path: LoraTests.fixtures + "/tiny-sd3",
                                                      options: LoraTests.options(Self.choice(index, layout: layout)))
            try Self.expectMatch(try LoraTests.generate(merged), case: index, "merged \(layout)")
            let loras = try runTime.loras(Self.choice(index, layout: layout))
            try Self.expectMatch(try LoraTests.generate(runTime, loras: loras), case: index, "run-time \(layout)")
        }
    }

    @Test func metadataScalesFollowPeftPatterns() throws {
        let file = try LoraFile(path: LoraTests.folder + "/norms.diffusers.safetensors")
        let transformer = try #require(file.pairs[.transformer]), clip = try #require(file.pairs[.textEncoder])
        // r 2, alpha 3; norm_out.linear rank 3 (alpha 3); norm1_context.linear alpha 1 (lora_norms.py).
        #expect(transformer["transformer_blocks.0.norm1.linear.weight"]?.scale == 1.5)
        #expect(transformer["transformer_blocks.0.norm1_context.linear.weight"]?.scale == 0.5)
        #expect(transformer["norm_out.linear.weight"]?.scale == 1)
        #expect(clip["text_model.encoder.layers.0.self_attn.q_proj.weight"]?.scale == 2.5)
    }

    @Test func badMetadataIsNamed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lora-meta-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try SafeTensorsFile(path: LoraTests.folder + "/norms.diffusers.safetensors")
        func write(_ metadata: String) throws -> String {
            let writer = SafeTensorsWriter(entries: try source.names.map { .init($0, try source.tensor($0)) },
                                           metadata: ["lora_adapter_metadata": metadata])
            let path = folder.appendingPathComponent("\(UUID().uuidString).safetensors").path
            try writer.write(to: path)
            return path
        }
        let notJSON = try write("{r: 2")
        #expect(throws: LoraError.badAdapterMetadata(path: notJSON, reason: "lora_adapter_metadata is not a JSON object")) {
            try LoraFile(path: notJSON)
        }
        let wrongRank = try write(#"{"transformer.r": 5, "transformer.lora_alpha": 5}"#)
        #expect { try LoraFile(path: wrongRank) } throws: { "\($0)".contains("its metadata says 5") && "\($0)".contains("transformer.") }
    }
}
