import ComfyUI
import ImageIO
import SD3

/// Everything the screen shows, as a value (docs/architecture.md, Studio): the reducer changes it, `render` draws it.
public struct StudioState: Sendable {
    public var columns = 80
    public var rows = 24
    public var editors: [FieldID: TextEditor] = [:]
    public var seedMode = SeedMode.fixed
    public var t5 = T5Mode.on
    public var precision = PrecisionChoice.fp32
    public var focus = FieldID.prompt
    public var job = Job.idle
    /// The x0 preview while generating (InferenceEngine's `step`), then the finished image.
    public var preview: RGBImage?
    /// The last finished image: the preview goes back to it when a run is cancelled or fails (not its noisy x0).
    public var lastImage: RGBImage?
    /// The last saved image and whether it is starred.
    public var current: HistoryRecord?
    public var status = Status(text: "", isError: false)
    /// The help (F1): a layer over whatever is shown; while it is up the open panel gets no keys.
    public var showHelp = false
    /// The one panel open, if any (OverlayPanel.swift): opening one replaces the one before. Each panel's file has a
    /// typed accessor for it (`browser`, `models`, `loraPanel`, …).
    public var overlay = Overlay.none
    /// The seed grid while it is shown (F6), and how its drafts are made.
    public var explore: Exploration?
    public var draft = DraftSettings()
    /// The themes F7 cycles through and the one in use; the terminal maps its roles to colours.
    public var themes = [Theme.dark]
    public var themeIndex = 0
    /// The PNG whose parameters are being read (off the main actor; Esc drops the answer).
    public var recalling: String?
    public var shouldQuit = false
    /// Where the picker (F8) looks for models besides the cache (`ModelCatalog.modelsFolder`, set by the command).
    public var modelsFolder = ""
    /// The model folder; nil when none was given (the studio still opens and says how to give one).
    public var model: String?
    /// The LoRAs every generation applies while on (F9), and their panel while it is open.
    public var loras: [LoraEntry] = []
    /// The status line of a recall whose LoRAs the session is looking for; generating waits until they are found.
    public var pendingRecall: String?
    /// A model being pulled from the hub (its progress is the status line), and the last one pulled (picked in F8).
    public var pull: PullJob?
    public var pulled: String?
    /// The ComfyUI servers (config `[[backends]]` and `--backend`), the one images render on (nil: the local engine),
    /// what the picker last learnt of each (by index), and the picker (F11) while it is open.
    public var backends: [StudioBackend] = []
    public var backend: Int?
    public var backendStatus: [Int: BackendStatus] = [:]
    /// Whether the local engine also takes drafts when a grid is spread over servers (Space on its row in F11).
    public var localDrafts = false
    /// The training panel's fields (kept while it is closed, so Enter with the same settings resumes), the job it
    /// started (running, or how the last one ended), and the folder a bare output name goes in (the first LoRA folder).
    public var trainingForm = TrainingForm()
    public var training: TrainingRun?
    public var loraFolder = ""
    public var graphics = GraphicsMode.symbols
    /// The seed used by the last generation started, for increment mode, and the seed field's text as that
    /// generation left it: a seed typed since then is where increment mode goes on from.
    public var lastSeed: UInt64?
    public var seedShown: String?
    /// The recipes the Recipe field cycles through, the one chosen (nil: none) and the LoRA path it added to `loras`.
    public var recipes: [RecipeChoice] = []
    public var recipe: Int?
    public var recipeLora: String?
    /// The model's defaults as a settings layer (its defaults.json or configs), kept so that another model's can
    /// replace them and a recipe that switched models can give them back.
    public var modelLayer: GenerationSettings.Layer?
    /// The model in use before a recipe switched to its own, with its layer: leaving the recipe goes back to them.
    public var beforeRecipe: (model: String?, layer: GenerationSettings.Layer?)?
    /// The Scheduler field: the model's Euler scheduler or Flash-SD3's (a recipe sets it).
    public var scheduler = SchedulerKind.euler
    /// T5 tokens: 256, or what the model's defaults.json says it was trained with.
    public var maxSequenceLength = 256
    /// Where each setting field's value came from, with the text it was given (an edited field reads "typed"), and
    /// the config file's layer, kept so a model switch resolves the new model's defaults under it.
    public var provenance: [FieldID: Provenance] = [:]
    public var configLayer = GenerationSettings.Layer(.config, nil, SettingsLayer())
    /// What the model understands (its folder's prompt_guide.json): the empty prompt's example and the hint for
    /// a prompt it knows no word of. nil for models without one.
    public var promptGuide: PromptGuide?
    /// SplitMix64 state for random seeds, so the reducer stays a pure function of its inputs.
    public var randomState: UInt64

    public init(model: String?, randomSeed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        self.model = model
        randomState = randomSeed
        for field in FieldID.allCases where field.kind != .choice { editors[field] = TextEditor() }
        set(.steps, "28")
        set(.guidance, "7")
        set(.seed, "0")
        set(.width, "1024")
        set(.height, "1024")
        set(.strength, "0.6")
        set(.variationStrength, "0.1")
        for field in FieldID.allCases where field != .sizePreset { record(field, .builtIn) }
        if model == nil {
            status = Status(text: "No model: start with `sd3 studio --model DIR` or set SD3_MODEL to a diffusers SD3 folder", isError: true)
        } else {
            status = Status(text: "Type a prompt, F5 to generate, F6 to explore seeds, F1 for help", isError: false)
        }
    }

    /// Starts the fields from the settings' layers (`GenerationSettings`: built-in, the model's defaults, the config
    /// file, a recipe or a recalled PNG), and remembers where each value came from. With `keepingTyped`, a field the
    /// user has edited since its value was set keeps what they typed, and one from a layer above the config keeps its
    /// value (a model switch re-resolves the rest: the new model's defaults under the config).
    /// `only` applies those layers' values and leaves the rest alone (a recipe fills only what it names; a model
    /// switch takes the model's and the config's, not the built-in defaults).
    public mutating func apply(_ settings: GenerationSettings, keepingTyped: Bool = false, only: Set<SettingSource>? = nil) {
        func resolve<T>(_ key: KeyPath<SettingsLayer, T?>) -> (value: T, from: GenerationSettings.Layer)? {
            guard let found = settings.resolve(key), only?.contains(found.from.source) ?? true else { return nil }
            return found
        }
        func put<T>(_ field: FieldID, _ key: KeyPath<SettingsLayer, T?>, _ text: (T) -> String) {
            guard let (value, layer) = resolve(key) else { return }
            // Kept: what was typed, and what a layer above those re-resolved gave (flags, a recalled PNG, a recipe).
            if keepingTyped, let known = provenance[field], known.text != shown(field) || known.source > .config { return }
            set(field, text(value))
            record(field, layer.source, layer.detail)
        }
        put(.prompt, \.prompt) { $0 }
        put(.negativePrompt, \.negativePrompt) { $0 }
        put(.width, \.width) { "\($0)" }
        put(.height, \.height) { "\($0)" }
        put(.steps, \.steps) { "\($0)" }
        put(.guidance, \.guidance) { NumberText.text($0) }
        put(.shift, \.shift) { NumberText.text($0) }
        put(.seed, \.seed) { "\($0)" }
        if let v = resolve(\.maxSequenceLength)?.value { maxSequenceLength = v }
        // The choice fields are the user's once the studio is open (a recipe owns the scheduler).
        guard !keepingTyped else { return }
        if let (v, layer) = resolve(\.t5) {
            t5 = v
            record(.t5, layer.source, layer.detail)
        }
        if let (v, layer) = resolve(\.precision), let choice = PrecisionChoice(rawValue: v.rawValue) {
            precision = choice
            record(.precision, layer.source, layer.detail)
        }
    }

    /// Another model's defaults in place of the current one's: the fields that came from the model's defaults or the
    /// config are resolved again under the config; what outranks them stays (`apply`'s `keepingTyped`).
    public mutating func switchModelLayer(to layer: GenerationSettings.Layer) {
        modelLayer = layer
        apply(GenerationSettings([layer, configLayer]), keepingTyped: true, only: [.model, .config])
    }

    /// What the settings layers leave to the config file alone: the seed mode, img2img strength and the variation,
    /// each marked as the config's (`configLayer`).
    public mutating func applyConfigExtras(_ d: ConfigFile.Defaults) {
        func put(_ field: FieldID, _ text: String?) {
            guard let text else { return }
            set(field, text)
            record(field, .config, configLayer.detail)
        }
        if let v = d.seedMode {
            seedMode = v
            record(.seedMode, .config, configLayer.detail)
        }
        put(.strength, d.strength.map(NumberText.text))
        put(.variationSeed, d.variationSeed.map { "\($0)" })
        put(.variationStrength, d.variationStrength.map(NumberText.text))
    }

    /// Where a setting's value came from: its layer, how the studio set it ("random seed mode", "size preset"), or
    /// "typed" ("chosen" for a choice) once changed here; nil for the size preset, which is the width and height.
    public func origin(of field: FieldID) -> String? {
        guard let known = provenance[field] else { return nil }
        guard known.text == shown(field) else { return field.kind == .choice ? "chosen" : "typed" }
        return known.label
    }

    /// The text a field shows: its editor's, or the name of its choice.
    public func shown(_ field: FieldID) -> String { editors[field]?.text ?? choiceText(self, field) }

    /// Marks the field's value as it is now as `source`'s (`detail`: the file or recipe it names).
    mutating func record(_ field: FieldID, _ source: SettingSource, _ detail: String? = nil) {
        provenance[field] = Provenance(source: source, detail: detail, text: shown(field))
    }

    public var theme: Theme { themes.indices.contains(themeIndex) ? themes[themeIndex] : .dark }

    public func text(_ field: FieldID) -> String { editors[field]?.text ?? "" }

    public mutating func set(_ field: FieldID, _ text: String) { editors[field] = TextEditor(text) }

    public var isRunning: Bool {
        if case .running = job { return true }
        return false
    }

    public var sizePresetIndex: Int? {
        guard let w = Int(text(.width)), let h = Int(text(.height)) else { return nil }
        return SizePresets.index(width: w, height: h)
    }

    /// The chosen server, nil for the local engine.
    public var server: StudioBackend? { backend.flatMap { backends[safe: $0] } }

    public var modelName: String {
        if let server { return server.model ?? "no model set for \(server.name)" }
        guard let model else { return "no model" }
        return model.split(separator: "/").last.map(String.init) ?? model
    }
}

public struct Provenance: Sendable, Equatable {
    public var source: SettingSource
    public var detail: String?
    public var text: String

    /// What the studio calls the source: the layer's name, "command-line flag", or how the studio set the value.
    public var label: String {
        switch source {
        case .given: "command-line flag"
        case .studio: detail ?? source.name
        default: source.name
        }
    }

    /// With the file or recipe the layer names, where there is one ("config file · ~/.config/…").
    public var fullLabel: String { source == .given || source == .studio ? label : label + (detail.map { " ·\u{A0}\($0)" } ?? "") }
}

public struct Status: Sendable, Equatable {
    public var text: String
    public var isError: Bool
    public init(text: String, isError: Bool) { (self.text, self.isError) = (text, isError) }
}

public enum Job: Sendable, Equatable {
    case idle
    case running(Phase)
    case cancelling
    case finished(seconds: Double)
    case failed(String)

    public enum Phase: Sendable, Equatable {
        case starting
        case loading
        case encoding
        case denoising(step: Int, total: Int, elapsed: Double)
        case decoding
    }
}

/// How images are drawn in the preview pane (`--graphics`). `sixel` and `kitty` are pixel protocols: `render`
/// leaves the image area blank and the terminal driver writes the image over it after each flush.
public enum GraphicsMode: String, Sendable, CaseIterable {
    case sixel, kitty, symbols, ascii, none

    public var isPixelProtocol: Bool { self == .sixel || self == .kitty }
}

extension GraphicsMode {
    /// The text fallback of `--graphics auto`: half-block symbols on a UTF-8 terminal, ASCII otherwise (LC_ALL,
    /// then LC_CTYPE, then LANG, as setlocale reads them) or with NO_COLOR (half blocks are nothing without their
    /// colours). Pixel protocols are detected by StudioTerminal, which can probe the terminal; this stays a pure
    /// function of the environment.
    public static func detect(environment: [String: String]) -> GraphicsMode {
        if environment["TERM"] == "dumb" || !(environment["NO_COLOR"] ?? "").isEmpty { return .ascii }
        let locale = [environment["LC_ALL"], environment["LC_CTYPE"], environment["LANG"]]
            .compactMap { $0 }.first { !$0.isEmpty } ?? ""
        let utf8 = locale.uppercased().contains("UTF-8") || locale.uppercased().contains("UTF8")
        return utf8 ? .symbols : .ascii
    }
}
