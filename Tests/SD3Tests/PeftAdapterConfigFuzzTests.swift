import Foundation
import FuzzSupport
import SafeTensors
import Testing
@testable import SD3

/// Seeded mutations of a peft folder's `adapter_config.json` (Flash-SD3's layout), read with its weights as a
/// `LoraFile`: each is refused with one error line naming the folder or its config, or read into pairs whose scale is
/// finite and whose shapes match.
@Suite struct PeftAdapterConfigFuzzTests {
    @Test func mutatedConfigsNeverCrash() throws {
        let folder = Hostile.temporaryFolder() + "/flash"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The fixture's weights cut to two modules (a linear and the conv), so one load costs well under a millisecond.
        let source = FewStepLoraTests.folder + "/flash-sd3"
        let kept = ["base_model.model.pos_embed.proj", "base_model.model.transformer_blocks.0.attn.to_q"]
        try Hostile.rewrite(source + "/adapter_model.safetensors", to: folder + "/adapter_model.safetensors") { key, tensor in
            kept.contains { key.hasPrefix($0 + ".") } ? (key, tensor) : nil
        }
        let config = try String(contentsOfFile: source + "/adapter_config.json", encoding: .utf8)
        let corpus = [config,
                      #"{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": true}"#,
                      #"{"peft_type": "LORA", "r": 4, "lora_alpha": 1, "rank_pattern": {"to_q": 8, "proj": 8}, "alpha_pattern": {"to_q": 2}}"#,
        ].map { [UInt8]($0.utf8) }
        let path = folder + "/adapter_config.json"
        var accepted = 0, refused = 0
        let read = { (bytes: [UInt8]) in
            LoraFuzzTests.overwrite(path, bytes)
            do {
                let lora = try LoraFile(path: folder)
                accepted += 1
                for (key, pair) in lora.pairs.values.flatMap({ $0 }) {
                    #expect(pair.scale.isFinite && pair.up.shape[1] == pair.down.shape[0], "\(key)")
                }
            } catch {
                refused += 1
                let message = "\(error)"
                #expect(message.contains(folder) && !message.contains("\n"), "\(message)")
            }
        }
        let slowest = Fuzz.run(corpus: corpus, seed: 37, read)
        let seconds = Fuzz.confirmedSeconds(slowest, read)
        #expect(seconds < Fuzz.hangGuard, "slowest PEFT folder took \(seconds) s")
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }
}
