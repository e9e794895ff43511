import Testing
import Tensors
@testable import SafeTensors

/// `KeyMap` patterns and transforms on in-memory tensors.
@Suite struct KeyMapTests {
    static func stored(_ name: String, _ shape: [Int]) -> StoredTensor {
        let n = shape.reduce(1, *)
        return StoredTensor(name: name, shape: shape, path: "mem:" + name) { () throws(SafeTensorsError) -> Tensor in
            Tensor(shape: shape, data: (0..<n).map(Float.init))
        }
    }

    @Test func patternsAndTransforms() throws {
        let map = KeyMap([
            .init("blocks.{i}.qkv", ["b.{i}.q", "b.{i}.k", "b.{i}.v"], .split),
            .init("blocks.{last}.mod", "b.{last}.mod", .swapHalves),
            .init("blocks.{i}.mod", "b.{i}.mod"),
            .init("up.{r}.w", "up_blocks.{r}.w"),
            .init("attn.{name}", "attention.{name}", .squeeze),
            .init("proj", "projection", .transpose),
            .init("ignored", "ignored", .drop),
        ], identities: [.init("eye", sizeOf: "b.0.mod")])
        let w = try MappedWeights([Self.stored("blocks.0.qkv", [6, 2]), Self.stored("blocks.0.mod", [4]), Self.stored("blocks.1.mod", [4]),
                                   Self.stored("up.0.w", [1]), Self.stored("up.2.w", [1]), Self.stored("attn.q", [2, 2, 1, 1]),
                                   Self.stored("proj", [2, 3]), Self.stored("ignored", [1]), Self.stored("stray", [1])],
                                  map: map, source: "test")
        #expect(try w.tensor("b.0.k", shape: [2, 2]).data == [4, 5, 6, 7])
        #expect(try w.tensor("b.1.mod", shape: [4]).data == [2, 3, 0, 1])  // the last block only
        #expect(try w.tensor("b.0.mod", shape: [4]).data == [0, 1, 2, 3])
        #expect(w.contains("up_blocks.2.w") && w.contains("up_blocks.0.w") && w.origin(of: "up_blocks.0.w") == "mem:up.2.w")
        #expect(w.shape(of: "attention.q") == [2, 2])
        #expect(try w.tensor("projection", shape: [3, 2]).data == [0, 3, 1, 4, 2, 5])
        #expect(try w.tensor("eye", shape: [4, 4]).data == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
        #expect(throws: SafeTensorsError.shapeMismatch(path: "mem:blocks.0.qkv", key: "b.0.q", expected: [6, 2], found: [2, 2])) {
            try w.tensor("b.0.q", shape: [6, 2])
        }
        #expect(!w.contains("ignored"))
        // Unfetched model keys first, then the stored names no rule knows.
        #expect(w.unusedKeys == ["attention.q", "b.0.q", "b.0.v", "up_blocks.0.w", "up_blocks.2.w", "stray"])
        #expect(throws: SafeTensorsError.duplicateKey(key: "x", firstPath: "test", secondPath: "mem:b")) {
            try MappedWeights([Self.stored("a", [1]), Self.stored("b", [1])], map: KeyMap([.init("{n}", "x")]), source: "test")
        }
    }
}
