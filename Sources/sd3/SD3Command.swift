import ArgumentParser
import SD3
import StudioCore
import Tensors

@main
struct SD3Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sd3",
        abstract: "SD3 Studio: Stable Diffusion 3 on the CPU.",
        version: "sd3 \(SD3.version) (oneDNN \(OneDNNBackend.version), \(OneDNNBackend.instructionSet); OpenBLAS \(OpenBLASBackend.configuration))",
        subcommands: [StudioCommand.self, GenerateCommand.self, TokenizeCommand.self, EncodeCommand.self, InfoCommand.self, ModelsCommand.self, ConvertCommand.self, BenchCommand.self, FavoritesCommand.self, HistoryCommand.self, RecallCommand.self],
        defaultSubcommand: StudioCommand.self)

    static func main() async {
        OpenMPWaitPolicy.restartPassiveIfUnset()
        await main(nil)
    }
}
