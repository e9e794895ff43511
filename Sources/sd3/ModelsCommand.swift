import ArgumentParser
import Foundation
import SD3

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "The SD3 models on this machine, pulling them from the Hugging Face Hub, and conversion of single files to diffusers folders.",
        subcommands: [ListModels.self, PullCommand.self, ConvertCommand.self],
        defaultSubcommand: ListModels.self)
}

struct ListModels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Every SD3 model found: $SD3_MODEL, the demo model, the Hugging Face cache and the models folder ($XDG_DATA_HOME/sd3-studio/models), with kind, size and text encoders.")

    @Option(help: "Another folder to search for .safetensors files and diffusers folders (repeatable).") var folder: [String] = []

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let configured = [environment["SD3_MODEL"], DemoModel.locate()].compactMap { $0 }.filter { !$0.isEmpty }
        let folders = [ModelCatalog.modelsFolder(environment: environment)] + folder
        let entries = ModelCatalog.scan(configured: configured, folders: folders, cache: HuggingFaceCache(environment: environment))
        if entries.isEmpty {
            print("no SD3 models found (searched $SD3_MODEL, the demo model, \(folders.joined(separator: ", ")) and the Hugging Face cache)")
            return
        }
        for entry in entries {
            print(entry.model)
            if let problem = entry.problem {
                print("  \(entry.layout), \(Format.bytes(entry.bytes)): unusable: \(problem)")
            } else {
                let encoders = entry.encoders.isEmpty ? "no text encoders" : entry.encoders.joined(separator: ", ")
                print("  \(entry.kind), \(entry.layout), \(Format.bytes(entry.bytes)), \(encoders)")
            }
        }
    }
}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a diffusers folder from a single-file checkpoint (with its separate encoder files).")

    @Argument(help: "The single-file checkpoint (or a cached repo id holding one).") var source: String
    @Option(help: "Output format (only diffusers).") var to = "diffusers"
    @Argument(help: "The folder to create.") var output: String
    @OptionGroup var files: ModelFiles
    @Option(help: "T5 weights for a checkpoint that lacks them.") var t5: String?

    func run() throws {
        guard to == "diffusers" else { throw ValidationError("--to must be diffusers, not '\(to)'") }
        let model = try ModelSource(source, extras: files.extras(t5File: t5))
        try DiffusersConverter.convert(model, to: output, progress: log)
        log("wrote \(output)")
    }
}
