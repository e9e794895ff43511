import ArgumentParser
import Foundation
import ImageIO
import SD3
import StudioCore
import StudioRuntime
import StudioTerminal

struct StudioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "studio",
        abstract: "The terminal studio: edit a prompt and settings, F5 to generate, watch the preview (the default command).")

    @Option(help: "A diffusers SD3 folder, cached repo id (ORG/NAME) or single-file checkpoint (default: $SD3_MODEL, else the demo model in models/sd3-demo).") var model: String?
    @OptionGroup var files: ModelFiles
    @Option(help: "T5 weights for a single-file --model that lacks them.") var t5: String?
    @Option(help: "Where finished images go (default: $XDG_DATA_HOME/sd3-studio/outputs).") var outputDir: String?
    @Option(help: "Image output in the terminal: auto, sixel, kitty, symbols, ascii or none (auto: from the environment, else a short terminal probe; symbols inside tmux).") var graphics: String?
    @Option(help: "Colour theme: a name from the themes folders (dark, light, high-contrast, mono, …) or a .toml file (F7 cycles them).") var theme: String?
    @Option(help: "Settings file (default: $XDG_CONFIG_HOME/sd3-studio/config.toml).") var config: String?
    @Option(help: "Seed exploration (F6): seeds in the grid, 4, 9 or 16 (default 4).") var exploreGrid: Int?
    @Option(help: "Seed exploration: steps of each draft (default 8, at most the refinement's).") var draftSteps: Int?
    @Option(help: "Seed exploration: draft size as a fraction of the full size, rounded to a multiple of 16 (default 1: drafts at the refinement's size predict it; smaller ones start from other noise).") var draftScale: Double?
    @Option(name: .shortAndLong, help: "The prompt to start with.") var prompt: String?
    @Option(name: [.customShort("W"), .long], help: "Starting width.") var width: Int?
    @Option(name: [.customShort("H"), .long], help: "Starting height.") var height: Int?
    @Option(help: "Starting number of steps.") var steps: Int?
    @Option(help: "Starting seed.") var seed: UInt64?
    @Option(help: "Engine threads (default: all cores).") var threads: Int?
    @Option(help: "ComfyUI servers to render on, added to the config's [[backends]]: comfyui://HOST:PORT (comfyuis:// for TLS) or a [[backends]] name, several separated by commas; the first is chosen (F11 picks another, or the local engine). The model and encoders are the entry's model, clip_l, clip_g, t5 and vae.")
    var backend: String?
    @Option(help: "A TAESD3 (madebyollin/taesd3: its diffusers folder, a folder with taesd3_decoder.safetensors, or that file) for previews and draft decoding. Default: the config's taesd, else one in the models folder or the Hugging Face cache.")
    var taesd: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let settings = try ConfigFile.loadForCommand(config, environment: environment)
        let graphics = self.graphics ?? settings.graphics ?? "auto"
        let threads = self.threads ?? settings.threads ?? ProcessInfo.processInfo.activeProcessorCount
        var draft = settings.draft
        if let exploreGrid {
            guard DraftSettings.counts.contains(exploreGrid) else { throw ValidationError("--explore-grid must be 4, 9 or 16, not \(exploreGrid)") }
            draft.count = exploreGrid
        }
        if let draftSteps {
            guard (1...1000).contains(draftSteps) else { throw ValidationError("--draft-steps must be between 1 and 1000, not \(draftSteps)") }
            draft.steps = draftSteps
        }
        if let draftScale {
            guard draftScale.isFinite, draftScale > 0, draftScale <= 1 else { throw ValidationError("--draft-scale must be above 0 and at most 1, not \(draftScale)") }
            draft.scale = draftScale
        }
        // The probe runs here, before ncurses starts, and only for `auto` on a terminal that the environment does not name.
        // The theme's background check shares it (one probe at most), when no theme is chosen.
        let interactive = isatty(STDIN_FILENO) != 0 && isatty(STDOUT_FILENO) != 0
        var probed: ProbeReply?? = nil
        let probe = { () -> ProbeReply? in
            if probed == nil { probed = .some(interactive ? TerminalProbe.run() : nil) }
            return probed!
        }
        guard let mode = GraphicsDetection.resolve(graphics, environment: environment, probe: probe) else {
            throw ValidationError("--graphics must be auto, sixel, kitty, symbols, ascii or none, not '\(graphics)'")
        }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
        // Absolute, so the PNG metadata and the history name the folder wherever they are read from.
        let modelPath = ModelChoice.resolve(given: model, configured: settings.model, environment: environment)
            .map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var state = StudioState(model: modelPath, randomSeed: UInt64.random(in: 0...UInt64.max))
        state.modelsFolder = ModelCatalog.modelsFolder(environment: environment)
        // The fields start from the settings' layers (built-in, the model's defaults, the config), as `sd3 generate` resolves them.
        state.configLayer = GenerationSettings.Layer(.config, config ?? ConfigFile.defaultPath(environment: environment), SettingsLayer(config: settings.defaults))
        var layers = [state.configLayer]
        if let modelPath {
            do {
                let source = try ModelSource(modelPath, extras: files.extras(t5File: t5))
                let modelLayer = GenerationSettings.Layer(.model, modelPath, SettingsLayer(try ModelDefaults.resolved(source)))
                state.modelLayer = modelLayer
                layers.append(modelLayer)
                state.promptGuide = PromptGuide.read(model: source.path)
            } catch {
                state.status = Status(text: "\(error)", isError: true)
            }
        }
        // The flags over them, as the flags' ("given"), so the studio says where each starting value came from.
        var flags = SettingsLayer()
        (flags.prompt, flags.width, flags.height, flags.steps, flags.seed) = (prompt, width, height, steps, seed)
        layers.append(GenerationSettings.Layer(.given, "flags", flags))
        state.apply(GenerationSettings(layers))
        state.applyConfigExtras(settings.defaults)
        // Checked once here, so a broken TAESD3 costs a message, not every generation.
        var taesdPath = TAESDSource.choose(flag: taesd, configured: settings.taesd.map(ConfigFile.expandingTilde), environment: environment)
        if let path = taesdPath {
            do { _ = try TAESDSource(path).load(precision: .fp32) } catch {
                state.status = Status(text: "TAESD3: \(error) (previews use the latent→RGB projection, drafts the VAE)", isError: true)
                taesdPath = nil
            }
        }
        if taesdPath != nil { draft.decoder = .taesd }
        state.draft = draft
        state.graphics = mode
        let catalog = ThemeCatalog.standard(environment: environment)
        // Asked of the terminal itself only (inside tmux or screen, COLORFGBG alone), and only when no theme is chosen.
        let term = environment["TERM"] ?? ""
        let askable = theme ?? settings.theme == nil && !GraphicsDetection.insideMultiplexer(environment) && term != "dumb" && !term.isEmpty
        let background = askable ? probe()?.background : nil
        let automatic = BackgroundTheme.choice(background: background, environment: environment).flatMap { catalog.path(for: $0) == nil ? nil : $0 }
        let themes = catalog.load(choice: theme ?? settings.theme ?? automatic)
        (state.themes, state.themeIndex) = (themes.themes, themes.current)
        if let problem = themes.errors.first { state.status = Status(text: problem, isError: true) }
        // A recipe's own model, when it is here, brings its defaults as a model switch does.
        let recipes = RecipeChoice.load(RecipeCatalog.standard(environment: environment), loraFolders: LoraCatalog.folders(environment: environment),
                                        modelDefaults: { try? ModelDefaults.resolved(ModelSource($0)) })
        state.recipes = recipes.choices
        if let problem = recipes.errors.first { state.status = Status(text: problem, isError: true) }
        do {
            (state.backends, state.backend) = try settings.studioBackends(adding: backend)
        } catch {
            throw ValidationError(error.description)
        }
        if let server = state.server {
            state.status = server.model == nil
                ? Status(text: "No model for \(server.label): give it a [[backends]] entry with its url and model = \"FILE\" in the config", isError: true)
                : Status(text: "Images render on \(server.label) with \(server.model!) (F11: backends); F5 to generate, F6 to explore seeds", isError: false)
        }
        if let modelPath {
            do { _ = try ModelSource(modelPath, extras: files.extras(t5File: t5)) } catch {
                state.status = Status(text: "\(error); restart with --model DIR, FILE or ORG/NAME", isError: true)
            }
        }
        let store = Result { () throws(StoreError) in try StudioStore(path: StudioStore.defaultPath(environment: environment)) }
        switch store {
        case let .failure(error): state.status = Status(text: "\(error.description) (history and favorites are off)", isError: true)
        case let .success(store): if let notice = store.notice { state.status = Status(text: notice, isError: notice.contains("unreadable")) }
        }
        let outputs = OutputFolder(path: outputDir ?? settings.outputFolder.map(ConfigFile.expandingTilde) ?? OutputFolder.defaultPath(environment: environment))
        // What a studio killed while saving left behind (PNGFile's temporary files of processes no longer running).
        PartialFiles.sweep(outputs.path)
        var config = StudioConfig(model: modelPath, outputFolder: outputs,
                                  store: store,
                                  threads: threads, modelFiles: files.extras(t5File: t5))
        config.taesd = taesdPath
        try await MainActor.run { StudioSession(state: state, config: config) }.run()
    }
}

extension StudioSession {
    func run() async throws {
        try await StudioApp.run(self)
    }
}
