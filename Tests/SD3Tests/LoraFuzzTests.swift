import Checksums
import Foundation
import FuzzSupport
import SafeTensors
import Testing
@testable import SD3

/// Seeded mutations of real LoRA files (kohya, diffusers and ComfyUI layouts) read as `LoraFile` and hashed as A1111
/// does: each is refused with one error line naming the file, or read into finite pairs of matching shapes; the short
/// hash is always "" or the SHA-256 of the bytes after a header length that fits the file.
@Suite struct LoraFuzzTests {
    /// The three layouts' fixtures cut to their first module (under two kilobytes each), metadata kept: whole
    /// fixtures cost milliseconds per load in a debug build, too slow for 10,000 loads in a few seconds.
    static func corpus(in folder: String) throws -> [[UInt8]] {
        try ["norms.kohya", "norms.diffusers", "norms.comfyui"].map { name in
            let source = Hostile.loras + "/\(name).safetensors", path = folder + "/\(name).safetensors"
            let suffixes = [".lora_A.weight", ".lora_B.weight", ".lora_down.weight", ".lora_up.weight", ".alpha"]
            func module(_ key: String) -> String { suffixes.first(where: key.hasSuffix).map { String(key.dropLast($0.count)) } ?? key }
            let kept = Set(try SafeTensorsFile(path: source).names.map(module).sorted().prefix(1))
            try Hostile.rewrite(source, to: path) { key, tensor in kept.contains(module(key)) ? (key, tensor) : nil }
            _ = try LoraFile(path: path)
            return [UInt8](FileManager.default.contents(atPath: path)!)
        }
    }

    @Test func mutatedLorasNeverCrash() throws {
        let folder = Hostile.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/fuzz.safetensors"
        var accepted = 0, refused = 0
        let read = { (bytes: [UInt8]) in
            Self.overwrite(path, bytes)
            do {
                let lora = try LoraFile(path: path)
                accepted += 1
                #expect(lora.shortHash == Self.naiveShortHash(bytes))
                for (key, pair) in lora.pairs.values.flatMap({ $0 }) {
                    #expect(pair.down.shape.count == 2 && pair.up.shape.count == 2 && pair.up.shape[1] == pair.down.shape[0], "\(key)")
                    #expect((pair.down.data + pair.up.data).allSatisfy { $0.isFinite && abs($0) <= 65536 } && pair.scale.isFinite, "\(key)")
                }
            } catch {
                refused += 1
                let message = "\(error)"
                #expect(message.contains(path) && !message.contains("\n"), "\(message)")
                #expect(LoraFile.shortHash(path: path) == Self.naiveShortHash(bytes))
            }
        }
        let slowest = Fuzz.run(corpus: try Self.corpus(in: folder), seed: 29, read)
        let seconds = Fuzz.confirmedSeconds(slowest, read)
        #expect(seconds < Fuzz.hangGuard, "slowest LoRA took \(seconds) s")
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    /// Overwrites a file in place with one write(2): Foundation's Data.write costs milliseconds here.
    static func overwrite(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The hash written out from the definition: the u64 little-endian header length, then SHA-256 of what follows.
    static func naiveShortHash(_ bytes: [UInt8]) -> String {
        guard bytes.count >= 8 else { return "" }
        var length: UInt64 = 0
        for (i, byte) in bytes.prefix(8).enumerated() { length += UInt64(byte) << (8 * UInt64(i)) }
        guard length <= UInt64(bytes.count - 8) else { return "" }
        var hash = SHA256()
        hash.update(Data(bytes[(8 + Int(length))...]))
        return String(SHA256.hex(hash.finish()).prefix(12))
    }
}
