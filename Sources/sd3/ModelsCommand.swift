import ArgumentParser
import Foundation
import ComfyUI
import SD3
import StudioCore

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
    @Option(help: "List what ComfyUI servers have instead: comfyui://HOST:PORT (several separated by commas) or a [[backends]] name from the config; with the device, its free VRAM and the queue.")
    var backend: String?
    @Option(help: "Settings file (default: $XDG_CONFIG_HOME/sd3-studio/config.toml), for --backend names.") var config: String?

    func run() throws {
        if let backend {
            let settings = try ConfigFile.loadForCommand(config, environment: ProcessInfo.processInfo.environment)
            guard let servers = try GenerateCommand.servers(backend, config: settings)?.servers.map(\.address), !servers.isEmpty else {
                throw CommandError("--backend must name ComfyUI servers (comfyui://HOST:PORT) for sd3 models")
            }
            return try Self.listServers(servers)
        }
        let environment = ProcessInfo.processInfo.environment
        let settings = try ConfigFile.loadForCommand(config, environment: environment)
        let configured = ModelChoice.listed(configured: settings.model, environment: environment)
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

extension ListModels {
    /// Each server's device and queue, then its files by folder, as `--model`, `--clip-l`, `--vae` and `--lora` name them.
    static func listServers(_ servers: [ServerAddress]) throws {
        var failures = 0
        for address in servers {
            let server = ComfyUIServer(address)
            do {
                let stats = try server.systemStats()
                let queue = try server.queueLength()
                let files = try server.files()
                print("\(address) — ComfyUI \(stats.comfyUIVersion ?? "?"), \(stats.summary), \(queue == 0 ? "queue empty" : "\(queue) in the queue")")
                for (folder, names) in [("checkpoints (--model)", files.checkpoints), ("diffusion_models (--model)", files.diffusionModels),
                                        ("text_encoders (--clip-l, --clip-g, --t5)", files.textEncoders), ("vae (--vae)", files.vaes),
                                        ("loras (--lora)", files.loras)] {
                    print("  \(folder): \(names.isEmpty ? "none" : names.joined(separator: ", "))")
                }
            } catch {
                failures += 1
                print("\(address) — unreachable: \(error)")
            }
        }
        if failures == servers.count { throw ExitCode(1) }
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
