import ArgumentParser
import Foundation
import RegularFiles
import SD3
import StudioCore
import Tensors

@main
struct SD3Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sd3",
        abstract: "SD3 Studio: Stable Diffusion 3 on the CPU.",
        version: "sd3 \(SD3.version) (\(InstructionSet.summary(nativeBF16: (try? OneDNNBackend(threads: 1))?.nativeBF16 ?? false)); OpenBLAS \(OpenBLASBackend.configuration))",
        subcommands: [StudioCommand.self, GenerateCommand.self, TrainLoraCommand.self, TokenizeCommand.self, EncodeCommand.self, InfoCommand.self, ModelsCommand.self, ConvertCommand.self, BenchCommand.self, FavoritesCommand.self, HistoryCommand.self, RecallCommand.self],
        defaultSubcommand: StudioCommand.self)

    static func main() async {
        OpenMPWaitPolicy.restartPassiveIfUnset()
        do {
            if let bad = InstructionSet.overrideError {
                throw ValidationError("SD3_MAX_ISA=\(bad.oneLine) is not one of \(InstructionSet.levels.joined(separator: ", "))")
            }
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exitWithOneLine(error)
        }
    }

    /// A failure is one line on standard error naming the flag or file (ArgumentParser would add the usage text);
    /// help and version still print in full, and an exit code alone (a cancelled run) prints nothing more.
    static func exitWithOneLine(_ error: Error) -> Never {
        let code = exitCode(for: error)
        guard code != .success else { exit(withError: error) }
        let line = message(for: error).split(separator: "\n").first.map(String.init) ?? ""
        if !line.isEmpty { FileHandle.standardError.write(Data(("Error: " + line + "\n").utf8)) }
        Foundation.exit(code.rawValue)
    }
}
