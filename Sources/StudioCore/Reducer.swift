import Foundation
import SD3

/// The one place the state changes: `reduce(&state, action)` updates it and returns what the session must do.
public func reduce(_ state: inout StudioState, _ action: Action) -> Reaction {
    // Before the panels: Ctrl-C means the same whatever is open.
    if case .interrupt = action { return interrupt(&state) }
    // Keys typed while the terminal is too small to show the studio would edit fields nobody sees ("600x" in Steps
    // after a resize): until it is large enough only quitting, Ctrl-C and Esc act.
    if !Layout(columns: state.columns, rows: state.rows).fits, actsOnHiddenScreen(action) { return Reaction(redraw: false) }
    // The session's reports reach their panel's concern whether the panel is open or not (a pull runs on with F8 closed).
    for panel in Bindings.panels {
        if let reaction = panel.receive(&state, action) { return reaction }
    }
    // A panel's key closes the help and opens the panel in place of whatever was open.
    if case let .open(opening) = action {
        state.showHelp = false
        if let open = state.overlay.panel, type(of: open) != type(of: opening.panel) { open.replaced(&state) }
        return opening.panel.open(&state)
    }
    let binding = Bindings.binding(for: action)
    // Keys go to the open panel first, unless the help is over it; what it lets through reaches the main screen.
    let isKey = binding != nil || action.isText
    if isKey, !state.showHelp, let panel = state.overlay.panel {
        let inScope = binding?.scope.map { $0 == type(of: panel) } ?? true
        if inScope, let reaction = panel.reduce(&state, action) { return reaction }
    }
    // A key scoped to a panel does nothing anywhere else (Ctrl-N outside the browser).
    if binding?.scope != nil { return .none }
    return reduceMainScreen(&state, action)
}

/// The fields, the seed grid, generation and the session's reports that are no panel's.
private func reduceMainScreen(_ state: inout StudioState, _ action: Action) -> Reaction {
    switch action {
    case .insert, .newline, .backspace, .delete, .left, .right, .up, .down, .home, .end, .wordLeft, .wordRight,
         .deleteToLineStart, .deleteToLineEnd:
        if state.explore != nil, !state.showHelp, let reaction = gridKey(&state, action) { return reaction }
        return edit(&state, action)
    case .nextField:
        state.focus = cycled(state.focus, by: 1)
    case .previousField:
        state.focus = cycled(state.focus, by: -1)
    case .toggleHelp:
        state.showHelp.toggle()
    case .generate:
        return generate(&state)
    case .explore:
        let reaction = explore(&state)
        // The grid takes the arrows and Enter: a panel open over it closes.
        if state.explore != nil { state.overlay = .none }
        return reaction
    case .cycleTheme:
        return cycleTheme(&state)
    case .cancel:
        if state.showHelp {
            state.showHelp = false
        } else if state.recalling != nil {
            state.recalling = nil
            state.status = Status(text: "Recall cancelled", isError: false)
            return Reaction(effects: [.cancelRecall])
        } else if state.isRunning {
            state.job = .cancelling
            state.status = Status(text: "Cancelling…", isError: false)
            return Reaction(effects: [.cancel])
        } else if state.explore != nil {
            state.explore = nil
            state.status = Status(text: "Left the seed grid", isError: false)
        } else if let reaction = stopTraining(&state) {
            return reaction
        } else if let reaction = cancelPull(&state) {
            return reaction
        } else {
            return .none
        }
    case .toggleFavorite:
        guard var current = state.current else {
            state.status = Status(text: "No saved image to star yet", isError: true)
            return Reaction()
        }
        current.favorite.toggle()
        state.current = current
        return Reaction(effects: [.setFavorite(id: current.id, favorite: current.favorite)])
    case .quit:
        state.shouldQuit = true
        return Reaction(effects: state.isRunning ? [.cancel, .quit] : [.quit])
    case let .resize(columns, rows):
        (state.columns, state.rows) = (columns, rows)
    case let .engine(event):
        return receive(&state, event)
    case let .gridEvent(cell, event):
        return gridEvent(&state, cell: cell, event)
    case let .generationStopped(error):
        if var grid = state.explore, grid.rendering != nil {
            (grid.rendering, grid.preview) = (nil, nil)
            state.explore = grid
            state.job = error.map { .failed($0) } ?? .idle
            state.status = error.map { Status(text: $0, isError: true) }
                ?? Status(text: "Cancelled: \(grid.finishedCount) of \(grid.seeds.count) seeds rendered; arrows pick, Enter refines, Esc leaves", isError: false)
        } else if let error {
            state.job = .failed(error)
            state.status = Status(text: error, isError: true)
            state.preview = state.lastImage
        } else {
            state.job = .idle
            state.status = Status(text: "Cancelled", isError: false)
            state.preview = state.lastImage
        }
    case let .recalledImage(image):
        // A run on screen keeps its own preview.
        if !state.isRunning { (state.preview, state.lastImage) = (image, image) }
    case let .saved(record):
        state.current = record
        state.status = Status(text: "Saved \(record.file)", isError: false)
        return Reaction(effects: browserThumbnails(&state))
    case let .failed(message):
        state.status = Status(text: message, isError: true)
    case let .favoriteSaved(id, favorite):
        state.status = Status(text: favorite ? "★ Starred #\(id)" : "Unstarred #\(id)", isError: false)
    default:
        return .none  // the panels' keys and reports (Bindings.panels): the reducer gave them to their panels above
    }
    return Reaction()
}

private func edit(_ state: inout StudioState, _ action: Action) -> Reaction {
    let field = state.focus
    if field.kind == .choice {
        switch action {
        case .left: cycleChoice(&state, field, by: -1)
        case .right, .insert(" "): cycleChoice(&state, field, by: 1)
        case .newline, .down: state.focus = cycled(field, by: 1)
        case .up: state.focus = cycled(field, by: -1)
        default: return .none
        }
        return Reaction()
    }
    guard var editor = state.editors[field] else { return .none }
    if field.isWholeNumber, case let .insert(text) = action, !text.allSatisfy(\.isASCIIDigit) {
        state.status = Status(text: "\(field.label) takes a whole number: '\(text.prefix(20))' was not typed", isError: true)
        return Reaction()
    }
    let multiLine = field.kind == .multiLine
    if !editor.apply(action, lineBreak: multiLine ? "\n" : " ") {
        // Enter, Up and Down: within the text of a multi-line field, else to the next or previous field.
        let width = Layout(columns: state.columns, rows: state.rows).editorWidth
        switch action {
        case .newline: if multiLine { editor.insert("\n") } else { state.focus = cycled(field, by: 1) }
        case .up: if multiLine { editor.vertical(-1, width: width) } else { state.focus = cycled(field, by: -1) }
        case .down: if multiLine { editor.vertical(1, width: width) } else { state.focus = cycled(field, by: 1) }
        default: return .none
        }
    }
    state.editors[field] = editor
    // Said while typing, not first at F5 ("0" once sat in Steps until then).
    let text = editor.text, limits = GenerationLimits.steps
    if field == .steps {
        let range = "must be between \(limits.lowerBound) and \(limits.upperBound)"
        let stale = state.status.isError && state.status.text.hasPrefix("Steps ") && state.status.text.hasSuffix(range)
        if !text.isEmpty, !(Int(text).map(limits.contains) ?? false) {
            state.status = Status(text: "Steps \(text): \(range)", isError: true)
        } else if stale {
            state.status = Status(text: "", isError: false)
        }
    }
    return Reaction()
}

private func cycleChoice(_ state: inout StudioState, _ field: FieldID, by delta: Int) {
    switch field {
    case .seedMode: state.seedMode = cycled(state.seedMode, by: delta)
    case .t5: state.t5 = cycled(state.t5, by: delta)
    case .precision: state.precision = cycled(state.precision, by: delta)
    case .scheduler: state.scheduler = cycled(state.scheduler, by: delta)
    case .recipe: chooseRecipe(&state, by: delta)
    case .sizePreset:
        let count = SizePresets.all.count
        let next = state.sizePresetIndex.map { (($0 + delta) % count + count) % count } ?? 0
        let size = SizePresets.all[next]
        state.set(.width, "\(size.width)")
        state.set(.height, "\(size.height)")
        for side in [FieldID.width, .height] { state.record(side, .studio, "size preset") }
    default: break
    }
}

/// Starts one generation with the fields' settings.
private func generate(_ state: inout StudioState) -> Reaction {
    guard let request = readRequest(&state, seeds: 1) else { return Reaction() }
    var effect = Effect.start(request)
    if state.server != nil {
        guard let remote = remoteEffect(&state, [request], grid: false) else { return Reaction() }
        effect = remote
    }
    state.explore = nil
    state.job = .running(.starting)
    state.status = Status(text: "Generating seed \(request.parameters.seed)\(state.server.map { " on \($0.label)" } ?? "")…", isError: false)
    return Reaction(effects: [effect])
}

/// Reads the fields into a request, choosing the seed by its mode (`seeds` consecutive seeds are taken, so
/// increment mode continues after the last); nil after putting the problem in the status line.
func readRequest(_ state: inout StudioState, seeds: Int) -> GenerationRequest? {
    guard !state.isRunning else {
        state.status = Status(text: "A generation is running: Esc cancels it", isError: true)
        return nil
    }
    if state.server == nil, let refusal = state.trainingRefusesGeneration {
        state.status = Status(text: refusal, isError: true)
        return nil
    }
    if let problem = state.serverWithoutModel {
        state.status = Status(text: problem, isError: true)
        return nil
    }
    // A server renders with its entry's model.
    guard let model = state.server.map({ $0.model ?? "" }) ?? state.model else {
        state.status = Status(text: "No model: restart with `sd3 studio --model DIR` or set SD3_MODEL", isError: true)
        return nil
    }
    let prompt = state.text(.prompt).trimmingCharacters(in: .whitespacesAndNewlines)
    guard !prompt.isEmpty else {
        state.status = Status(text: "Type a prompt first", isError: true)
        return nil
    }
    do throws(FieldError) {
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = state.text(.negativePrompt).trimmingCharacters(in: .whitespacesAndNewlines)
        p.steps = try number(state, .steps, Int.init)
        p.guidanceScale = try number(state, .guidance, Double.init)
        p.width = try number(state, .width, Int.init)
        p.height = try number(state, .height, Int.init)
        p.shift = state.text(.shift).isEmpty ? nil : try number(state, .shift, Double.init)
        p.maxSequenceLength = state.maxSequenceLength
        let initImage = state.text(.initImage).trimmingCharacters(in: .whitespaces)
        if !initImage.isEmpty { p.strength = try number(state, .strength, Double.init) }
        // An empty variation seed turns variation off; its strength must then be left alone, whatever it says.
        if !state.text(.variationSeed).trimmingCharacters(in: .whitespaces).isEmpty {
            let strength = try number(state, .variationStrength, Double.init)
            guard strength.isFinite, (0...1).contains(strength) else {
                throw FieldError(description: "\(FieldID.variationStrength.label): '\(state.text(.variationStrength))' must be between 0 and 1")
            }
            p.variation = VariationSeed(seed: try number(state, .variationSeed, UInt64.init), strength: strength)
        }
        switch state.seedMode {
        case .fixed:
            p.seed = try number(state, .seed, UInt64.init)
        case .random:
            p.seed = nextRandom(&state.randomState) & 0xFFFF_FFFF
        case .increment:
            if let last = state.lastSeed, state.text(.seed) == state.seedShown { p.seed = last &+ 1 } else { p.seed = try number(state, .seed, UInt64.init) }
        }
        if let i = state.recipe, let problem = state.recipes[safe: i]?.problem {
            throw FieldError(description: problem + "; pick another recipe or none")
        }
        p.scheduler = state.scheduler
        p.recipe = state.recipe.flatMap { state.recipes[safe: $0]?.recipe.name }
        let loras = try state.enabledLoras().get()
        if state.text(.seed) != "\(p.seed)" {
            state.set(.seed, "\(p.seed)")
            state.record(.seed, .studio, "\(state.seedMode.rawValue) seed mode")
        }
        (state.lastSeed, state.seedShown) = (p.seed &+ UInt64(seeds - 1), "\(p.seed)")
        return GenerationRequest(parameters: p, model: model, t5: state.t5, precision: state.precision,
                                 initImagePath: initImage.isEmpty ? nil : initImage, loras: loras)
    } catch {
        state.status = Status(text: error.description, isError: true)
        return nil
    }
}

/// F7: the next theme; the terminal picks it up on the next draw.
private func cycleTheme(_ state: inout StudioState) -> Reaction {
    guard state.themes.count > 1 else {
        state.status = Status(text: "Only one theme is installed (themes/*.toml)", isError: true)
        return Reaction()
    }
    state.themeIndex = (state.themeIndex + 1) % state.themes.count
    let about = state.theme.description.isEmpty ? "" : ": \(state.theme.description)"
    state.status = Status(text: "Theme: \(state.theme.name)\(about) (F7 for the next)", isError: false)
    return Reaction()
}

struct FieldError: Error, CustomStringConvertible {
    let description: String
}

private func number<T>(_ state: StudioState, _ field: FieldID, _ parse: (String) -> T?) throws(FieldError) -> T {
    let text = state.text(field).trimmingCharacters(in: .whitespaces)
    guard let value = parse(text) else { throw FieldError(description: "\(field.label): '\(text)' is not a valid number") }
    return value
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator whose state lives in StudioState.
func nextRandom(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

private func receive(_ state: inout StudioState, _ event: GenerationEvent) -> Reaction {
    guard state.job != .cancelling else { return .none }
    switch event {
    case let .loading(model):
        state.job = .running(.loading)
        state.status = Status(text: "Loading \(model)…", isError: false)
    case .loaded where state.explore?.rendering != nil:
        break  // the status keeps saying which seed of the grid is rendering
    case let .loaded(seconds):
        state.status = Status(text: String(format: "Model loaded in %.1f s", seconds), isError: false)
    case .encodingPrompt:
        state.job = .running(.encoding)
    case let .encodedPrompt(_, _, warnings) where state.explore?.rendering != nil:
        if !warnings.isEmpty { state.status = Status(text: warnings.joined(separator: "; "), isError: false) }
    case let .encodedPrompt(seconds, cached, warnings):
        let text = cached ? "Prompt unchanged: text encoders skipped" : String(format: "Prompt encoded in %.2f s", seconds)
        state.status = Status(text: ([text] + warnings).joined(separator: "; "), isError: false)
    case let .step(index, total, _, elapsed, preview):
        state.job = .running(.denoising(step: index + 1, total: total, elapsed: elapsed))
        if let preview {
            if state.explore?.rendering != nil { state.explore?.preview = preview } else { state.preview = preview }
        }
    case .decoding:
        state.job = .running(.decoding)
    case let .finished(image, _, seconds) where state.explore?.rendering != nil:
        return draftFinished(&state, image: image, seconds: seconds)
    case let .finished(image, metadata, seconds):
        state.job = .finished(seconds: seconds)
        (state.preview, state.lastImage) = (image, image)
        state.status = Status(text: String(format: "Done in %.1f s; saving…", seconds), isError: false)
        return Reaction(effects: [.save(image: image, metadata: metadata)])
    }
    return Reaction()
}

/// What Ctrl-C says when nothing runs; a second Ctrl-C while it shows quits.
let interruptHint = "Ctrl-C again quits (or F10 / Ctrl-Q); Esc cancels a running generation"

/// Ctrl-C, as people expect it in a terminal: it stops the running generation, else a training job, else a pull;
/// with nothing running the first one says how to quit and the second quits.
func interrupt(_ state: inout StudioState) -> Reaction {
    if state.isRunning {
        state.job = .cancelling
        state.status = Status(text: "Cancelling…", isError: false)
        return Reaction(effects: [.cancel])
    }
    if let reaction = stopTraining(&state) ?? cancelPull(&state) { return reaction }
    if state.status.text == interruptHint { return reduce(&state, .quit) }
    state.status = Status(text: interruptHint, isError: false)
    return Reaction()
}

/// The key actions that edit a field or open something on the screen: text and every binding but quit, Ctrl-C and Esc.
func actsOnHiddenScreen(_ action: Action) -> Bool {
    switch action {
    case .quit, .interrupt, .cancel: false
    case .open: true
    default: action.isText || Bindings.binding(for: action) != nil
    }
}

extension Action {
    /// The keys that act as on the main screen whichever panel is open (a panel may give one its own meaning, as the
    /// browser's F2 stars its selected entry): help, star, generate, explore seeds, theme, quit.
    var actsInEveryPanel: Bool {
        switch self {
        case .toggleHelp, .toggleFavorite, .generate, .explore, .cycleTheme, .quit: true
        default: false
        }
    }

    /// Typed or pasted text (`Bindings.action(for:)`).
    var isText: Bool {
        if case .insert = self { return true }
        return false
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
