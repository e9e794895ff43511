import Foundation
import ImageMetadata
import SD3

/// The favorites (F3) and history (F4) browser as a panel over the whole screen.
extension Browser: OverlayPanel {
    static let placement = Placement.wholeScreen
    var overlay: Overlay { .browser(self) }

    /// F3 or F4 again (the same kind) closes it; the other kind replaces it.
    func open(_ state: inout StudioState) -> Reaction {
        if state.browser?.kind == kind {
            state.browser = nil
            return Reaction()
        }
        state.browser = self
        return Reaction(effects: [.loadBrowser(favoritesOnly: kind == .favorites)])
    }

    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction? {
        switch mode {
        case .confirmDelete: confirmDelete(&state, action)
        case let .editingNote(editor): editNote(&state, editor, action)
        case .browsing: browse(&state, self, action)
        }
    }

    /// What the store and the session's file reads answer.
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction? {
        switch action {
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
        case .failed:
            // The store could not be read: a browser still waiting for it closes (the main reducer shows why).
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
        default:
            return nil
        }
    }

    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) { drawBrowser(state, self, &buffer) }
}

extension StudioState {
    public var browser: Browser? {
        get { self[panel: Browser.self] }
        set { self[panel: Browser.self] = newValue }
    }
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
    default:
        return action.actsInEveryPanel ? nil : Reaction.none
    }
    return Reaction(effects: browserThumbnails(&state))
}

/// y deletes; any other key but quitting answers no.
private func confirmDelete(_ state: inout StudioState, _ action: Action) -> Reaction? {
    if case .quit = action { return nil }
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
    case .quit: return nil
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
        var recalled: [FieldID] = [.prompt, .negativePrompt, .shift, .variationSeed]
        func put(_ field: FieldID, _ text: String?) {
            guard let text else { return }
            set(field, text)
            recalled.append(field)
        }
        set(.prompt, p.prompt)
        set(.negativePrompt, p.negativePrompt ?? "")
        put(.steps, p.steps.map { "\($0)" })
        put(.guidance, p.guidanceScale.map(RecalledParameters.number))
        if let v = p.seed {
            set(.seed, "\(v)")
            seedMode = .fixed
            recalled += [.seed, .seedMode]
        }
        put(.width, p.width.map { "\($0)" })
        put(.height, p.height.map { "\($0)" })
        set(.shift, p.shift.map(RecalledParameters.number) ?? "")
        put(.strength, p.strength.map(RecalledParameters.number))
        // A file without a variation seed had none: the field is cleared so the image comes back as it was.
        set(.variationSeed, p.variationSeed.map { "\($0)" } ?? "")
        put(.variationStrength, p.variationStrength.map(RecalledParameters.number))
        defer { for field in recalled { record(field, .recalled, source) } }
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
            recalled += [.t5, .precision, .scheduler, .recipe]
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
