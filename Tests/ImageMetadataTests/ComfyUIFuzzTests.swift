import FuzzSupport
import Foundation
import ImageIO
@testable import ImageMetadata
import Testing

/// ComfyUI's `prompt` and `workflow` JSON and InvokeAI's metadata from a hostile PNG: 10,000 seeded mutations of
/// the sample files' chunks through `RecalledParameters.parse` never crash and each parses fast; what comes back
/// is a value or a one-line error naming the file.
@Suite struct ComfyUIFuzzTests {
    /// (chunk key, value) pairs from the sample PNGs, plus hand-made graphs with hostile numbers.
    static func corpus() throws -> [(key: String, value: String)] {
        var chunks: [(key: String, value: String)] = []
        for name in ["comfyui.png", "comfyui-workflow.png", "invokeai.png", "invokeai2.png"] {
            let text = try PNGFile.readText(RecallTests.folder + "/" + name)
            chunks += text.filter { ["prompt", "workflow", "invokeai_metadata", "sd-metadata"].contains($0.key) }
        }
        chunks.append(("prompt", #"{"3": {"class_type": "KSampler", "inputs": {"seed": 18446744073709551615, "steps": 1e300, "cfg": -1e308, "denoise": 0.5, "positive": ["6", 0], "negative": ["3", 0], "model": ["3", 0], "latent_image": ["3", 0]}}, "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["6", 0]}}}"#))
        chunks.append(("workflow", #"{"nodes": [{"id": 1e300, "type": "KSampler", "widgets_values": [1e300, "fixed", -5, 1e308], "inputs": [{"name": "positive", "link": 1e20}]}], "links": [[1e20, 1e300, 0, 1, 0, "X"]]}"#))
        return chunks
    }

    @Test func mutatedGraphsNeverCrashAndStayFast() throws {
        let chunks = try Self.corpus()
        #expect(chunks.count >= 6, "\(chunks.map(\.key))")
        for chunk in chunks.prefix(chunks.count - 2) {
            #expect((try? MetadataReader.parse([chunk], name: "x.png")) != nil, "the sample \(chunk.key) chunk parses")
        }
        // The chunk key rides in the first byte so one corpus covers every format.
        let keys = chunks.map(\.key)
        let corpus = chunks.enumerated().map { [UInt8($0.offset)] + Array($0.element.value.utf8) }
        var badErrors: [String] = []
        let slowest = Fuzz.run(corpus: corpus, seed: 0xC0F1_0001) { bytes in
            guard let first = bytes.first else { return }
            let key = keys[Int(first) % keys.count]
            do throws(MetadataError) {
                _ = try MetadataReader.parse([(key, String(decoding: bytes.dropFirst(), as: UTF8.self))], name: "fuzz.png")
            } catch {
                if !error.description.hasPrefix("fuzz.png: ") || error.description.contains("\n"), badErrors.count < 3 { badErrors.append(error.description) }
            }
        }
        #expect(badErrors.isEmpty, "\(badErrors)")
        #expect(slowest.seconds < Fuzz.hangGuard, "slowest case \(slowest.seconds) s: \(String(decoding: slowest.input.prefix(80), as: UTF8.self))")
    }

    /// 100,000 nested arrays (a stack overflow for a recursive parser) are one error line naming the file.
    @Test func deepNestingIsAnError() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        for key in ["prompt", "workflow", "invokeai_metadata", "sd-metadata", "sd3-studio"] {
            let error = #expect(throws: MetadataError.self) { try MetadataReader.parse([(key, deep)], name: "deep.png") }
            #expect(error?.description.hasPrefix("deep.png: ") == true, "\(key): \(String(describing: error))")
        }
    }

    /// Seeds are read exactly up to 2⁶⁴−1 and refused past it or when not whole, never trapping on the conversion.
    @Test func seedsOutOfRangeAreNil() throws {
        func seed(_ json: String) throws -> UInt64? { try #require(JSONValue.parse("[\(json)]")?.array?.first).seed }
        #expect(try seed("18446744073709551615") == UInt64.max)
        #expect(try seed("42") == 42 && seed("42.0") == 42)
        #expect(try seed("1e300") == nil && seed("18446744073709551616") == nil && seed("-1") == nil && seed("0.5") == nil)
    }
}
