import Foundation
import ImageIO
@testable import ImageMetadata
import Testing

/// Our PNGs (OwnPNGCases) read right by us, by sd-parsers 0.6 and by sd-prompt-reader 1.3.5 (their readings recorded
/// by scripts/fixtures/metadata_readers.py in ours/readers.json), and by us again after Pillow re-saves them plainly,
/// compressed, and with the text after the image data.
@Suite struct OwnPNGTests {
    static let cases = OwnPNGCases.all.map(\.name)

    /// The committed PNGs are what the writer writes today (else the readers' record is of another format).
    @Test(arguments: cases)
    func fixtureIsWhatTheWriterWrites(_ name: String) throws {
        let m = try #require(OwnPNGCases.all.first { $0.name == name }?.metadata)
        let path = OwnPNGCases.folder + "/\(name).png"
        if ProcessInfo.processInfo.environment["SD3_WRITE_OWN_PNGS"] == "1" { try PNGFile.write(OwnPNGCases.image, text: m.pngText, to: path) }
        let text = try PNGFile.readText(path)
        #expect(text.map(\.key) == m.pngText.map(\.key) && text.map(\.value) == m.pngText.map(\.value),
                "\(path) is not what ImageMetadata writes now: rerun with SD3_WRITE_OWN_PNGS=1, then scripts/fixtures/metadata_readers.py")
    }

    /// A1111's layout: LoRA tags at the end of the prompt line and their hashes, an empty prompt as an empty first
    /// line, numbers shortest round-trip.
    @Test func writtenText() throws {
        func text(_ name: String) throws -> String { try #require(OwnPNGCases.all.first { $0.name == name }).metadata.a1111Parameters }
        let loras = try text("loras")
        #expect(loras.hasPrefix("a cat on a mat <lora:style-a:0.8> <lora:detail_v2:1.25>\nNegative prompt: blurry, lowres\nSteps: 28, "))
        #expect(loras.contains(#"Lora hashes: "style-a: a1b2c3d4e5f6, detail_v2: 0123456789ab""#))
        #expect(try text("empty-prompt").hasPrefix("\nSteps: 28, Sampler: Euler"))
        #expect(try text("empty-prompt-negative").hasPrefix("\nNegative prompt: blurry\nSteps: 28"))
        #expect(try text("loras-empty-prompt").hasPrefix("<lora:style-a:0.5>\nSteps: 28"))
        let tricky = try text("tricky")
        #expect(tricky.contains("CFG scale: 0.30000000000000004, ") && tricky.contains("Shift: 0.8700000000000001, "))
    }

    /// Ours: every file and re-save gives back the exact record; the A1111 text alone gives the same fields, LoRAs
    /// (names, strengths, hashes) stripped out of the prompt.
    @Test(arguments: cases)
    func weRecallOurOwn(_ name: String) throws {
        let m = try #require(OwnPNGCases.all.first { $0.name == name }?.metadata)
        for variant in ["", ".resave", ".zip", ".after-idat"] {
            let path = OwnPNGCases.folder + "/\(name)\(variant).png"
            let p = try MetadataReader.read(path)
            #expect(p.source == .sd3Studio && p.metadata == m && p.warnings.isEmpty, "\(path): \(p.warnings)")
        }
        let a = try MetadataReader.parse([("parameters", m.a1111Parameters)], name: "\(name).png")
        #expect(a.source == .sd3Studio && a.prompt == m.prompt && a.negativePrompt == (m.negativePrompt.isEmpty ? nil : m.negativePrompt))
        #expect(a.steps == m.steps && a.guidanceScale == m.guidanceScale && a.seed == m.seed && a.width == m.width && a.height == m.height)
        #expect(a.model == m.model && a.shift == m.shift && a.strength == m.strength)
        #expect(a.variationSeed == m.variationSeed && a.variationStrength == m.variationStrength)
        #expect(a.loras == (m.loras ?? []).map { RecalledParameters.Lora(name: $0.name, strength: $0.strength, hash: $0.hash) }, "\(a.loras)")
    }

    struct Readers: Decodable {
        var files: [String: File]
        struct File: Decodable {
            var `case`: String
            var variant: String
            var chunks: [[String]]
            var sdParsers: SDParsers?
            var promptReader: PromptReader
            enum CodingKeys: String, CodingKey { case `case`, variant, chunks, sdParsers = "sd-parsers", promptReader = "sd-prompt-reader" }
        }
        struct SDParsers: Decodable {
            var generator: String
            var prompt: String
            var negative: String
            var sampler: String
            var parameters: [String: String]
            var model: String?
            var metadata: [String: String]
        }
        struct PromptReader: Decodable {
            var tool: String
            var prompt: String
            var negative: String
            var parameter: [String: String]
        }
    }

    static let readers: Readers? = {
        let data = FileManager.default.contents(atPath: OwnPNGCases.folder + "/readers.json") ?? Data()
        return try? JSONDecoder().decode(Readers.self, from: data)
    }()

    /// The prompt as A1111-style readers must show it: ours with the LoRA tags at its end.
    static func promptLine(_ m: ImageMetadata) -> String {
        let tags = (m.loras ?? []).map { "<lora:\($0.name):\(ImageMetadata.number($0.strength))>" }.joined(separator: " ")
        return m.prompt.isEmpty ? tags : tags.isEmpty ? m.prompt : m.prompt + " " + tags
    }

    @Test func readersRecordCoversEveryCaseAndVariant() throws {
        let files = try #require(Self.readers?.files)
        #expect(files.count == Self.cases.count * 4, "\(files.keys.sorted())")
        // The re-saves are the chunk forms they claim to be.
        #expect(files["tricky.zip.png"]?.chunks.contains(["parameters", "iTXt"]) == true)
        #expect(files["plain.zip.png"]?.chunks.contains(["parameters", "zTXt"]) == true)
    }

    /// sd-parsers and sd-prompt-reader read every field of every case, from the file and from Pillow's re-saves.
    @Test(arguments: cases)
    func referenceReadersReadOurs(_ name: String) throws {
        let m = try #require(OwnPNGCases.all.first { $0.name == name }?.metadata)
        let files = try #require(Self.readers?.files).filter { $0.value.case == name && $0.value.variant != "after-idat" }
        #expect(files.count == 3)
        for (file, read) in files {
            let s = try #require(read.sdParsers, "\(file): sd-parsers read nothing")
            #expect(s.generator == "Generators.AUTOMATIC1111", "\(file)")
            #expect(s.prompt == Self.promptLine(m), "\(file): sd-parsers prompt \(s.prompt)")
            #expect(s.negative == m.negativePrompt, "\(file): sd-parsers negative \(s.negative)")
            #expect(s.sampler == "Euler" && s.parameters["steps"] == "\(m.steps)" && s.parameters["seed"] == "\(m.seed)", "\(file): \(s.parameters)")
            #expect(s.parameters["cfg_scale"].flatMap(Double.init) == m.guidanceScale, "\(file): \(s.parameters)")
            #expect(s.model == m.model && s.metadata["Size"] == "\(m.width)x\(m.height)", "\(file): \(String(describing: s.model)) \(s.metadata)")
            // Variation seed and img2img strength as A1111 keys (sd-parsers keeps them; sd-prompt-reader shows the raw line).
            if let v = m.variationSeed, let w = m.variationStrength {
                #expect(s.metadata["Variation seed"] == "\(v)" && s.metadata["Variation seed strength"] == ImageMetadata.number(w), "\(file): \(s.metadata)")
            }
            if let strength = m.strength { #expect(s.metadata["Denoising strength"] == ImageMetadata.number(strength), "\(file): \(s.metadata)") }
            let r = read.promptReader
            #expect(r.tool == "A1111 webUI", "\(file): \(r.tool)")
            #expect(r.prompt == Self.promptLine(m), "\(file): sd-prompt-reader prompt \(r.prompt)")
            #expect(r.negative == m.negativePrompt, "\(file): sd-prompt-reader negative \(r.negative)")
            #expect(r.parameter["steps"] == "\(m.steps)" && r.parameter["seed"] == "\(m.seed)" && r.parameter["sampler"] == "Euler", "\(file): \(r.parameter)")
            #expect(r.parameter["cfg"].flatMap(Double.init) == m.guidanceScale, "\(file): \(r.parameter)")
            #expect(r.parameter["model"] == m.model && r.parameter["size"] == "\(m.width)x\(m.height)", "\(file): \(r.parameter)")
        }
    }
}
