import Testing
import Tensors
@testable import SafeTensors

@Suite struct WeightStoreTests {
    func store(_ folder: TemporaryFolder) throws -> WeightStore {
        let a = folder.path + "/shard-1.safetensors", b = folder.path + "/shard-2.safetensors"
        try SafeTensorsWriter(entries: [.init("blocks.0.attn.to_q.weight", Tensor(zeros: [4, 4])),
                                        .init("blocks.0.attn.to_q.bias", Tensor(zeros: [4]))]).write(to: a)
        try SafeTensorsWriter(entries: [.init("blocks.1.attn.to_q.weight", Tensor(repeating: 2, shape: [4, 4]), as: .bf16),
                                        .init("extra.unused", Tensor(zeros: [1]))]).write(to: b)
        return try WeightStore(paths: [a, b])
    }

    @Test func scopesFetchByFullKeyAcrossShards() throws {
        let folder = TemporaryFolder()
        let weights = try store(folder)
        let attn = weights.scope("blocks").scope("1").scope("attn")
        #expect(attn.key("to_q.weight") == "blocks.1.attn.to_q.weight")
        #expect(try attn.tensor("to_q.weight", shape: [4, 4]).data == [Float](repeating: 2, count: 16))
        #expect(weights.unusedKeys == ["blocks.0.attn.to_q.bias", "blocks.0.attn.to_q.weight", "extra.unused"])
        _ = try weights.scope("blocks.0.attn").tensor("to_q.weight", shape: [4, 4])
        _ = try weights.scope("blocks.0.attn").tensor("to_q.bias", shape: [4])
        #expect(throws: SafeTensorsError.unusedKeys(path: weights.source, keys: ["extra.unused"], total: 1)) { try weights.requireAllUsed() }
    }

    @Test func errorsNameKeyFileAndShapes() throws {
        let folder = TemporaryFolder()
        let weights = try store(folder)
        let shard1 = folder.path + "/shard-1.safetensors"
        #expect(throws: SafeTensorsError.shapeMismatch(path: shard1, key: "blocks.0.attn.to_q.weight", expected: [4, 8], found: [4, 4])) {
            try weights.tensor("blocks.0.attn.to_q.weight", shape: [4, 8])
        }
        #expect(throws: SafeTensorsError.missingKey(path: weights.source, key: "blocks.2.attn.to_q.weight")) {
            try weights.scope("blocks.2.attn").tensor("to_q.weight", shape: [4, 4])
        }
        let message = SafeTensorsError.shapeMismatch(path: shard1, key: "k", expected: [4, 8], found: [4, 4]).description
        #expect(message.contains(shard1) && message.contains("'k'") && message.contains("[4, 8]") && message.contains("[4, 4]"))
    }

    @Test func duplicateKeysAcrossShardsAreRejected() throws {
        let folder = TemporaryFolder()
        let a = folder.path + "/a.safetensors", b = folder.path + "/b.safetensors"
        try SafeTensorsWriter(entries: [.init("w", Tensor(zeros: [1]))]).write(to: a)
        try SafeTensorsWriter(entries: [.init("w", Tensor(zeros: [1]))]).write(to: b)
        #expect(throws: SafeTensorsError.duplicateKey(key: "w", firstPath: a, secondPath: b)) { try WeightStore(paths: [a, b]) }
    }
}
