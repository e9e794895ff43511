import ArgumentParser
import Foundation
import ImageMetadata
import StudioCore

struct RecallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recall",
        abstract: "Print the generation parameters of a PNG made by sd3, A1111/Forge, ComfyUI, InvokeAI, Fooocus, NovelAI, SwarmUI, Draw Things or stable-diffusion.cpp.")

    @Argument(help: "The PNG file.") var file: String
    @Flag(help: "JSON: {source, prompt, negativePrompt, steps, guidanceScale, seed, width, height, …, loras, extra, warnings, metadata}.") var json = false

    func run() throws {
        var recalled = try MetadataReader.read(file)
        // Our own PNGs name the files they were made with; one that is not here cannot give the same pixels.
        if let m = recalled.metadata {
            if let path = m.modelPath, !FileManager.default.fileExists(atPath: path) { recalled.warnings.append("model \(path) not found on this machine") }
            for lora in m.loras ?? [] {
                if let path = lora.path, !FileManager.default.fileExists(atPath: path) { recalled.warnings.append("LoRA \(lora.name) not found at \(path)") }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(recalled), as: UTF8.self))
        } else {
            recalled.lines.forEach { print($0) }
            // What the reader saw and did not recall (`warnings` in the JSON).
            recalled.warnings.forEach { print("Warning: \($0)") }
        }
    }
}
