import Foundation
@testable import ImageMetadata
import Testing

/// The real tools' sample PNGs from sd-parsers 0.6's source distribution (scripts/fixtures/metadata_samples.py) recall
/// what sd-parsers' own tests assert: prompt, negative prompt, seed, steps, CFG, sampler, scheduler, size, model and
/// img2img strength, field by field; a format we do not claim is a clear refusal, never a guess.
@Suite struct RealToolSampleTests {
    static let folder = Support.packageRoot + "/Tests/ImageMetadataTests/Fixtures/metadata"

    /// expected.json as sd-parsers' dataclasses were dumped. Decoded with JSONDecoder, which reads 0.8700000000000001
    /// exactly (JSONSerialization on Linux gives 0.8700000000000003).
    struct Sample: Decodable {
        var tool: String?
        var samplers: [Sampler]?
        var metadata: [String: Scalar]?
    }

    struct Sampler: Decodable {
        var name: String
        var parameters: [String: Scalar]
        var model: Model?
        var prompts: [Prompt]
        var negative_prompts: [Prompt]
        struct Model: Decodable { var name: String? }
        struct Prompt: Decodable { var value: String }
    }

    /// A text, number or flag (sd-parsers keeps A1111's numbers as text); objects and lists are not needed here.
    enum Scalar: Decodable {
        case text(String), number(Double), flag(Bool), other
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .text(s) }
            else { self = .other }
        }
        var number: Double? { if case let .number(d) = self { d } else if case let .text(s) = self { Double(s) } else { nil } }
        var text: String? { if case let .text(s) = self { s } else { nil } }
    }

    struct Document: Decodable { var files: [String: Sample] }

    static var expected: [String: Sample] {
        let data = FileManager.default.contents(atPath: folder + "/expected.json") ?? Data()
        return (try? JSONDecoder().decode(Document.self, from: data))?.files ?? [:]
    }

    static var readable: [String] { expected.filter { !($0.value.samplers ?? []).isEmpty }.keys.sorted() }
    static var refused: [String] { expected.filter { ($0.value.samplers ?? []).isEmpty }.keys.sorted() }

    @Test func samplesArePresent() {
        #expect(Self.readable.count == 11 && Self.refused.count == 2, "\(Self.readable) \(Self.refused)")
    }

    /// sd-parsers' seeds: text for A1111 and Fooocus, a number below 2⁵³ for the others.
    static func seed(_ v: Scalar?) -> UInt64? { v?.text.flatMap { UInt64($0) } ?? v?.number.flatMap { UInt64(exactly: $0) } }
    /// Prompts as lines: ours joins a graph's several prompts one per line.
    static func lines(_ prompts: [Sampler.Prompt]) -> [String] {
        prompts.flatMap { $0.value.split(separator: "\n").map { String($0).trimmingSpaces } }.filter { !$0.isEmpty }.sorted()
    }
    static func lines(_ text: String?) -> [String] {
        (text ?? "").split(separator: "\n").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }.sorted()
    }

    @Test(arguments: readable)
    func sampleRecallsWhatItsToolWrote(_ name: String) throws {
        let want = try #require(Self.expected[name])
        let p = try MetadataReader.read(Self.folder + "/" + name)
        let samplers = want.samplers ?? []
        // A graph with several samplers: ours is the first pass (its latent from no other sampler); it must be one of
        // the samplers sd-parsers reads, every field equal, and the others are named in a warning.
        let s = try #require(samplers.first { Self.seed($0.parameters["seed"] ?? $0.parameters["noise_seed"]) == p.seed },
                             "\(name): seed \(String(describing: p.seed)) is none of sd-parsers' samplers'")
        if samplers.count > 1 { #expect(p.warnings.contains { $0.contains("\(samplers.count - 1) other sampler") }, "\(p.warnings)") }
        let metadata = want.metadata ?? [:]
        #expect(Self.lines(p.prompt) == Self.lines(s.prompts), "\(name): \(p.prompt)")
        #expect(Self.lines(p.negativePrompt) == Self.lines(s.negative_prompts), "\(name): \(String(describing: p.negativePrompt))")
        // NovelAI's steps are in sd-parsers' metadata, the others' in the sampler's parameters.
        #expect(p.steps.map(Double.init) == (s.parameters["steps"] ?? metadata["steps"])?.number, "\(name)")
        #expect(p.guidanceScale == s.parameters["cfg_scale"]?.number, "\(name)")
        #expect(p.sampler == s.name, "\(name): \(String(describing: p.sampler))")
        if let scheduler = s.parameters["scheduler"]?.text { #expect(p.scheduler == scheduler, "\(name)") }
        if let denoise = s.parameters["denoise"]?.number { #expect(p.strength == (denoise < 1 ? denoise : nil), "\(name)") }
        #expect(p.model == s.model?.name, "\(name): \(String(describing: p.model))")
        // Size: A1111's "Size", InvokeAI's width and height, Fooocus's "(W, H)"; ComfyUI's samples assert none.
        let size = metadata["Size"]?.text.map { $0.split(separator: "x").compactMap { Int($0) } }
            ?? metadata["resolution"]?.text.map { $0.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) } }
            ?? [metadata["width"], metadata["height"]].compactMap { $0?.number.map { Int($0) } }
        if size.count == 2 { #expect(p.width == size[0] && p.height == size[1], "\(name): \(String(describing: p.width))x\(String(describing: p.height))") }
    }

    @Test func eachSampleNamesItsTool() throws {
        let sources = try Self.readable.map { ($0, try MetadataReader.read(Self.folder + "/" + $0).source) }
        let tools: [String: RecalledParameters.Source] = ["AUTOMATIC1111": .a1111, "ComfyUI": .comfyUI, "Fooocus": .fooocus, "NovelAI": .novelAI]
        for (name, source) in sources {
            let tool = Self.expected[name]?.tool
            if tool == "InvokeAI" { #expect(source == .invokeAI || source == .invokeAILegacy, "\(name)") }
            else if let tool { #expect(source == tools[tool], "\(name): \(source)") }
            else { #expect(source == .a1111, "\(name): \(source)") }  // text_after_idat.png: A1111 text after IDAT
        }
    }

    /// The stealth sample keeps its parameters in the alpha channel's low bits (an A1111 extension), which we do not
    /// read; the empty image has none: both are a plain refusal naming the chunks.
    @Test(arguments: refused)
    func sampleWithoutTextParametersIsRefused(_ name: String) throws {
        let error = #expect(throws: MetadataError.self) { try MetadataReader.read(Self.folder + "/" + name) }
        #expect(error?.description.hasPrefix("\(Self.folder)/\(name): no generation parameters I can read (chunks: ") == true, "\(String(describing: error))")
    }

    /// ComfyUI: a double keeps every digit, the five prompts of a ConditioningCombine all come back, and an
    /// unCLIPCheckpointLoader names the model.
    @Test func comfyUIDetails() throws {
        let img2img = try MetadataReader.read(Self.folder + "/img2img_cropped.png")
        #expect(img2img.strength == 0.8700000000000001 && RecalledParameters.number(img2img.strength!) == "0.8700000000000001")
        let combined = try MetadataReader.read(Self.folder + "/night_evening_day_morning_cropped.png")
        #expect(combined.prompt.split(separator: "\n").count == 5 && combined.warnings.contains { $0.contains("joins 5 prompts") }, "\(combined.warnings)")
        let unclip = try MetadataReader.read(Self.folder + "/unclip_2pass_cropped.png")
        #expect(unclip.model == "wd-1-5-beta2-aesthetic-unclip-h-fp32.safetensors")
    }

    /// Fooocus's JSON `parameters` is read as Fooocus, never as A1111 text.
    @Test func fooocusIsNotA1111() throws {
        let p = try MetadataReader.read(Self.folder + "/fooocus1_cropped.png")
        #expect(p.source == .fooocus && p.prompt == "a smiling goldfish" && p.seed == 6_952_411_511_246_973_023)
        #expect(p.extra.contains { $0.key == "version" && $0.value == "Fooocus v2.4.3" })
    }
}
