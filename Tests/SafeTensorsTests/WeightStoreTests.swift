import Foundation
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

/// Loading gives the file's pages back: after every tensor of a 64 MB file is decoded, the file's mapping holds
/// almost nothing resident (read from /proc/self/smaps for that mapping alone, so other tests do not disturb it),
/// and the decoded values are still right. Untouched tensors are never read at all.
@Suite struct MappedLoadingTests {
    /// Rss of this process's mapping of `path`, in bytes (nil when it is not mapped).
    static func mappedResidentBytes(_ path: String) -> Int? {
        // /proc files report size 0, so read them to the end with read(2) rather than by their size.
        let fd = open("/proc/self/smaps", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let smaps = String(decoding: bytes, as: UTF8.self)
        var inMapping = false, total: Int?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, first.first?.isHexDigit == true, !first.hasSuffix(":") {
                inMapping = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            } else if inMapping, fields.first == "Rss:", fields.count >= 2 {
                total = (total ?? 0) + Int(fields[1])! * 1024
            }
        }
        return total
    }

    @Test func decodedTensorsLeaveNoFilePagesBehind() throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/big.safetensors"
        let entries = (0..<16).map { i in
            SafeTensorsWriter.Entry("layer.\(i).weight", Tensor(repeating: Float(i), shape: [1024, 1024]), as: .f16)
        }
        try SafeTensorsWriter(entries: entries + [.init("untouched", Tensor(repeating: 1, shape: [4096, 1024]), as: .f16)]).write(to: path)
        let store = try WeightStore(paths: [path])
        for i in 0..<16 {
            let t = try store.tensor("layer.\(i).weight", shape: [1024, 1024])
            #expect(t.data.allSatisfy { $0 == Float(i) })
        }
        let resident = try #require(Self.mappedResidentBytes(path))
        #expect(resident <= 256 * 1024, "\(resident) bytes of the 40 MB file still resident")
        // A tensor read again comes back from the page cache with the same values.
        #expect(try store.tensor("layer.3.weight", shape: [1024, 1024]).data.allSatisfy { $0 == 3 })
    }
}
