import ArgumentParser
import SD3

@main
struct SD3Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sd3",
        abstract: "SD3 Studio: Stable Diffusion 3 on the CPU.",
        version: SD3.version,
        subcommands: [])
}
