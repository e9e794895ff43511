import Foundation
import ImageMetadata
import SD3

/// The reducer's part for the favorites/history browser and the recall-path prompt: nil when the action is not
/// theirs (the main reducer handles it).
func reduceBrowser(_ state: inout StudioState, _ action: Action) -> Reaction? {
    switch action {
    case .showFavorites, .showHistory, .openRecall: state.showHelp = false
    default: break
    }
    switch action {
    case .showFavorites: return open(&state, .favorites)
    case .showHistory: return open(&state, .history)
    case .openRecall:
        state.browser = nil
        state.recallPath = TextEditor()
        state.status = Status(text: "Recall a PNG (ours, A1111/Forge, ComfyUI, stable-diffusion.cpp, InvokeAI): type its path, Enter", isError: false)
        return Reaction()
    case let .browserLoaded(records):
        guard state.browser != nil else { return Reaction.none }
        state.browser?.records = records
        state.browser?.selected = 0
        return Reaction(effects: browserThumbnails(&state))
    case let .thumbnailLoaded(id, image):
        guard let image else {
            state.browser?.missing.insert(id)
            return Reaction(redraw: state.browser != nil)
        }
        state.browser?.thumbnails[id] = image
        return Reaction(redraw: state.browser != nil)
    case let .deletePlanned(id, deletion):
        guard let record = state.browser?.current, record.id == id, state.browser?.mode == .browsing else { return Reaction.none }
        state.browser?.mode = .confirmDelete(deletion)
        switch deletion {
        // The question first: a long path is cut at the end of the line (the hint row shows the path's end).
        case let .file(path): state.status = Status(text: "Delete #\(id) and its file? y/n: \(path)", isError: true)
        case let .entryOnly(reason): state.status = Status(text: "Remove #\(id) from the list only? y/n: \(reason)", isError: true)
        }
        return Reaction()
    case let .deleted(id, message):
        state.browser?.records?.removeAll { $0.id == id }
        if let browser = state.browser { state.browser?.selected = min(browser.selected, max(0, browser.shown.count - 1)) }
        if state.current?.id == id { state.current = nil }
        state.status = Status(text: message, isError: false)
        return Reaction(effects: browserThumbnails(&state))
    case let .noteSaved(id, note):
        state.browser?.update(id) { $0.note = note }
        if state.current?.id == id { state.current?.note = note }
        state.status = Status(text: note.isEmpty ? "Note removed from #\(id)" : "Note saved on #\(id)", isError: false)
        return Reaction()
    case let .recalled(parameters, source):
        guard state.recalling != nil else { return Reaction.none }
        state.recalling = nil
        return Reaction(effects: state.recall(parameters, from: source))
    case .failed:
        // The store could not be read: a browser still waiting for it closes (the main reducer shows why).
        state.recalling = nil
        if state.browser?.records == nil { state.browser = nil }
        return nil
    case let .saved(record):
        // An image finished while the history browser is open joins its list (the main reducer does the rest).
        if let browser = state.browser, browser.kind == .history, browser.records != nil {
            let selectedID = browser.current?.id
            state.browser?.records?.insert(record, at: 0)
            if let selectedID, let i = state.browser?.shown.firstIndex(where: { $0.id == selectedID }) { state.browser?.selected = i }
        }
        return nil
    default: break
    }
    if state.showHelp { return nil }
    if state.recalling != nil, case .cancel = action {
        state.recalling = nil
        state.status = Status(text: "Recall cancelled", isError: false)
        return Reaction(effects: [.cancelRecall])
    }
    if state.recallPath != nil { return recallPrompt(&state, action) }
    guard let browser = state.browser else { return nil }
    switch browser.mode {
    case .confirmDelete: return confirmDelete(&state, action)
    case let .editingNote(editor): return editNote(&state, editor, action)
    case .browsing: return browse(&state, browser, action)
    }
}

private func open(_ state: inout StudioState, _ kind: Browser.Kind) -> Reaction {
    state.recallPath = nil
    if state.browser?.kind == kind {
        state.browser = nil
        return Reaction()
    }
    state.browser = Browser(kind: kind)
    return Reaction(effects: [.loadBrowser(favoritesOnly: kind == .favorites)])
}

private func browse(_ state: inout StudioState, _ browser: Browser, _ action: Action) -> Reaction? {
    let count = browser.shown.count
    switch action {
    case let .insert(text):
        state.browser?.query += text.replacingOccurrences(of: "\n", with: " ")
        state.browser?.selected = 0
    case .backspace:
        guard !browser.query.isEmpty else { return Reaction.none }
        state.browser?.query.removeLast()
        state.browser?.selected = 0
    case .deleteToLineStart:
        state.browser?.query = ""
    case .up: state.browser?.selected = max(0, browser.selected - 1)
    case .down: state.browser?.selected = max(0, min(count - 1, browser.selected + 1))
    case .home: state.browser?.selected = 0
    case .end: state.browser?.selected = max(0, count - 1)
    case .newline:
        guard let record = browser.current else { return Reaction.none }
        state.browser = nil
        return Reaction(effects: state.recall(RecalledParameters(record.metadata), from: "#\(record.id)"))
    case .delete:
        guard let record = browser.current else { return Reaction.none }
        return Reaction(effects: [.planDelete(id: record.id, file: record.file)])
    case .editNote:
        guard let record = browser.current else { return Reaction.none }
        guard record.favorite else {
            state.status = Status(text: "Notes are for favorites: F2 stars #\(record.id) first", isError: true)
            return Reaction()
        }
        state.browser?.mode = .editingNote(TextEditor(record.note))
        state.status = Status(text: "Note for #\(record.id): Enter saves, Esc cancels", isError: false)
    case .toggleFavorite:
        guard let record = browser.current else { return Reaction.none }
        state.browser?.update(record.id) { $0.favorite.toggle() }
        if state.current?.id == record.id { state.current?.favorite = !record.favorite }
        return Reaction(effects: [.setFavorite(id: record.id, favorite: !record.favorite)])
    case .cancel:
        state.browser = nil
        return Reaction()
    case .generate, .toggleHelp:
        return nil
    default:
        return passesThrough(action) ? nil : Reaction.none
    }
    return Reaction(effects: browserThumbnails(&state))
}

/// What the browser and its questions (y/n, a note, a path) let through to the main reducer: the session's
/// reports, resizes and quitting.
private func passesThrough(_ action: Action) -> Bool {
    switch action {
    case .resize, .engine, .generationStopped, .saved, .failed, .favoriteSaved, .quit: return true
    default: return false
    }
}

private func confirmDelete(_ state: inout StudioState, _ action: Action) -> Reaction? {
    if passesThrough(action) { return nil }
    state.browser?.mode = .browsing
    guard case let .insert(text) = action, text.lowercased() == "y", let record = state.browser?.current else {
        state.status = Status(text: "Not deleted", isError: false)
        return Reaction()
    }
    state.status = Status(text: "Deleting #\(record.id)…", isError: false)
    return Reaction(effects: [.delete(id: record.id, file: record.file)])
}

private func editNote(_ state: inout StudioState, _ editor: TextEditor, _ action: Action) -> Reaction? {
    var editor = editor
    if editor.apply(action) {
        state.browser?.mode = .editingNote(editor)
        return Reaction()
    }
    if passesThrough(action) { return nil }
    switch action {
    case .newline:
        state.browser?.mode = .browsing
        guard let record = state.browser?.current else { return Reaction() }
        let note = editor.text.trimmingCharacters(in: .whitespaces)
        return Reaction(effects: [.setNote(id: record.id, note: note)])
    case .cancel:
        state.browser?.mode = .browsing
        state.status = Status(text: "Note not changed", isError: false)
        return Reaction()
    default: return Reaction.none
    }
}

private func recallPrompt(_ state: inout StudioState, _ action: Action) -> Reaction? {
    guard var editor = state.recallPath else { return nil }
    // A path has no line breaks: any pasted with it are dropped.
    if editor.apply(action, lineBreak: "") {
        state.recallPath = editor
        return Reaction()
    }
    if passesThrough(action) { return nil }
    switch action {
    case .generate: return nil
    case .newline:
        state.recallPath = nil
        let path = editor.text.trimmingCharacters(in: .whitespaces)
        guard !path.isEmpty else { return Reaction() }
        let expanded = (path as NSString).expandingTildeInPath
        state.recalling = expanded
        state.status = Status(text: "Reading \(expanded)… (Esc cancels)", isError: false)
        return Reaction(effects: [.recall(path: expanded)])
    case .cancel:
        state.recallPath = nil
        state.status = Status(text: "Recall cancelled", isError: false)
        return Reaction()
    default: return Reaction.none
    }
}

/// Asks for the thumbnails of the entries in view that have not been asked for.
func browserThumbnails(_ state: inout StudioState) -> [Effect] {
    guard let browser = state.browser else { return [] }
    let layout = BrowserLayout(columns: state.columns, rows: state.rows)
    let top = layout.top(selected: browser.selected)
    let wanted = browser.shown.dropFirst(top).prefix(layout.visibleCount).filter { !browser.requested.contains($0.id) }
    guard !wanted.isEmpty else { return [] }
    state.browser?.requested.formUnion(wanted.map(\.id))
    return [.loadThumbnails(wanted.map { Thumbnail(id: $0.id, file: $0.file) })]
}

extension StudioState {
    /// Loads recalled parameters into the fields: every one the file records; the rest keep their values. Our own
    /// PNGs bring their LoRAs back too: the effect asks the session to find the files (an image without LoRAs turns
    /// every LoRA off).
    @discardableResult
    public mutating func recall(_ p: RecalledParameters, from source: String) -> [Effect] {
        set(.prompt, p.prompt)
        set(.negativePrompt, p.negativePrompt ?? "")
        if let v = p.steps { set(.steps, "\(v)") }
        if let v = p.guidanceScale { set(.guidance, RecalledParameters.number(v)) }
        if let v = p.seed {
            set(.seed, "\(v)")
            seedMode = .fixed
        }
        if let v = p.width { set(.width, "\(v)") }
        if let v = p.height { set(.height, "\(v)") }
        set(.shift, p.shift.map(RecalledParameters.number) ?? "")
        if let v = p.strength { set(.strength, RecalledParameters.number(v)) }
        // A file without a variation seed had none: the field is cleared so the image comes back as it was.
        set(.variationSeed, p.variationSeed.map { "\($0)" } ?? "")
        if let v = p.variationStrength { set(.variationStrength, RecalledParameters.number(v)) }
        var notes: [String] = []
        var effects: [Effect] = []
        pendingRecall = nil
        if let m = p.metadata {
            if let records = m.loras, !records.isEmpty {
                effects.append(.locateLoras(records, from: source))
                if m.loraMode != LoraMode.runTime.recordedName { notes.append("LoRAs merged by sd3 generate, here at run time: equal within rounding") }
            } else {
                for i in loras.indices { loras[i].enabled = false }
            }
            t5 = T5Mode(t5: m.t5, weights: m.t5Weights)
            precision = PrecisionChoice(rawValue: m.precision) ?? precision
            maxSequenceLength = m.maxSequenceLength
            scheduler = m.scheduler.flatMap(SchedulerKind.init(rawValue:)) ?? .euler
            // The recorded LoRAs replace the list, the recipe's included; the Recipe field shows the recipe they came from.
            (recipe, recipeLora) = (m.recipe.flatMap { name in recipes.firstIndex { $0.recipe.name == name } }, nil)
            if let path = m.modelPath, path != model { notes.append("made with \(path)") }
            if m.strength != nil { notes.append("img2img: set the init image") }
            if m.skipLayers != nil { notes.append("skip-layer guidance is not a studio field") }
        } else {
            notes.append("from \(p.source.rawValue)")
            if let sampler = p.sampler { notes.append("sampler \(sampler) → Euler") }
            if let model = p.model { notes.append("model \(model)") }
            if !p.loras.isEmpty {
                notes.append("LoRAs " + p.loras.map { "\($0.name) \(RecalledParameters.number($0.strength))" }.joined(separator: ", ") + " not turned on")
            }
        }
        notes += p.warnings
        let seed = p.seed.map { " seed \($0)" } ?? ""
        status = Status(text: "Recalled \(source)\(seed)" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))"), isError: false)
        if !effects.isEmpty {
            pendingRecall = status.text
            status.text += " · finding its LoRAs…"
        }
        focus = .prompt
        return effects
    }
}
