import FuzzSupport
import Foundation
import ImageIO
@testable import ImageMetadata
import Testing

/// Every sample PNG (the real tools' from sd-parsers, ours, and scripts/fixtures/foreign_pngs.py's) mutated: its text
/// chunks' values 10,000 times through the readers, and the whole file 2,000 times through `MetadataReader.parse(png:)`
/// (chunk lengths, compressed streams, keys; the chunk walk itself has 10,000 cases in ImageIOTests' PNGChunkFuzzTests,
/// and a whole-file case costs about four chunk cases in a debug build). No crash, no case near the hang guard, and
/// every error one line naming the file.
@Suite struct MetadataFuzzTests {
    static let samples: [String] = {
        let folders = [RealToolSampleTests.folder, OwnPNGCases.folder, Support.packageRoot + "/Tests/ImageMetadataTests/Fixtures/recall"]
        return folders.flatMap { folder in
            // Pillow's re-saves are the originals' text again; two compressed ones stand for the zTXt and iTXt forms.
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".png") && $0.split(separator: ".").count == 2 || ["plain.zip.png", "tricky.zip.png"].contains($0) }
                .map { folder + "/" + $0 }
        }.sorted()
    }()

    @Test func everySampleIsFuzzed() {
        #expect(Self.samples.count >= 30, "\(Self.samples.count)")
    }

    @Test(arguments: samples)
    func mutatedFilesNeverCrashOrHang(_ path: String) throws {
        let bytes = try #require(FileManager.default.contents(atPath: path)).map { $0 }
        var badErrors: [String] = []
        func body(_ input: [UInt8]) {
            do throws(MetadataError) { _ = try MetadataReader.parse(png: input, name: "fuzz.png") } catch {
                if !error.description.hasPrefix("fuzz.png: ") || error.description.contains("\n"), badErrors.count < 3 { badErrors.append(error.description) }
            }
        }
        let seed = UInt64(truncatingIfNeeded: path.utf8.reduce(5381) { ($0 << 5) &+ $0 &+ Int($1) })
        let slowest = Fuzz.run(corpus: [bytes], seed: seed, iterations: Fuzz.iterations(standard: 2_000), body)
        #expect(badErrors.isEmpty, "\(path): \(badErrors)")
        if slowest.seconds >= Fuzz.hangGuard { #expect(Fuzz.confirmedSeconds(slowest, body) < Fuzz.hangGuard, "\(path): slowest case \(slowest.seconds) s") }
    }

    @Test(arguments: samples)
    func mutatedChunksNeverCrashOrHang(_ path: String) throws {
        let chunks = PNGFile.textChunkList(try #require(FileManager.default.contents(atPath: path)).map { $0 })
        guard !chunks.isEmpty else { return }
        // The chunk's index rides in the first byte, so mutations of one chunk are read beside the others unchanged.
        let corpus = chunks.enumerated().map { [UInt8($0.offset)] + Array($0.element.value.utf8) }
        var badErrors: [String] = []
        func body(_ input: [UInt8]) {
            guard let first = input.first else { return }
            let index = Int(first) % chunks.count
            var mutated = chunks.map { MetadataReader.Chunk(key: $0.key, value: $0.value, latin1: $0.latin1) }
            mutated[index].value = String(decoding: input.dropFirst(), as: UTF8.self)
            do throws(MetadataError) { _ = try MetadataReader.parse(mutated, name: "fuzz.png") } catch {
                if !error.description.hasPrefix("fuzz.png: ") || error.description.contains("\n"), badErrors.count < 3 { badErrors.append(error.description) }
            }
        }
        let seed = UInt64(truncatingIfNeeded: path.utf8.reduce(7919) { ($0 << 5) &+ $0 &+ Int($1) })
        let slowest = Fuzz.run(corpus: corpus, seed: seed, body)
        #expect(badErrors.isEmpty, "\(path): \(badErrors)")
        if slowest.seconds >= Fuzz.hangGuard { #expect(Fuzz.confirmedSeconds(slowest, body) < Fuzz.hangGuard, "\(path): slowest case \(slowest.seconds) s") }
    }

    /// Hostile shapes no mutation is likely to find: a ComfyUI graph joining one branch 60 levels deep (2⁶⁰ paths),
    /// thousands of chained samplers, and an A1111 prompt of unclosed or many LoRA tags; each is read in well under
    /// the hang guard.
    @Test func hostileShapesStayFast() throws {
        var nodes = [#""0": {"class_type": "CLIPTextEncode", "inputs": {"text": "x"}}"#]
        for i in 1...60 { nodes.append(#""\#(i)": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["\#(i - 1)", 0], "conditioning_2": ["\#(i - 1)", 0]}}"#) }
        nodes.append(#""s": {"class_type": "KSampler", "inputs": {"positive": ["60", 0], "seed": 1}}"#)
        var samplers: [String] = []
        for i in 0..<5_000 { samplers.append(#""k\#(i)": {"class_type": "KSampler", "inputs": {"latent_image": ["k\#(i + 1)", 0], "seed": \#(i)}}"#) }
        let lora = String(repeating: "<lyco:", count: 200_000) + String(repeating: "<lora:a:1>", count: 100_000)
        let cases: [(String, String)] = [("prompt", "{" + nodes.joined(separator: ", ") + "}"), ("prompt", "{" + samplers.joined(separator: ", ") + "}"),
                                         ("parameters", lora + "\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 1")]
        for (key, value) in cases {
            let (p, seconds) = try Fuzz.cpuSeconds { try MetadataReader.parse([(key, value)], name: "hostile.png") }
            #expect(seconds < Fuzz.hangGuard, "\(key): \(seconds) s of CPU")
            if key == "prompt", p.prompt == "x" { #expect(p.warnings.isEmpty, "\(p.warnings)") }
        }
    }
}
