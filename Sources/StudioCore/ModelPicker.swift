import Foundation
import SD3

/// The model picker (F8): the models `sd3 models list` finds (configured paths, the models folder, the Hugging
/// Face cache), scanned by the session; Enter makes the selected one the studio's model and starts the fields
/// from its defaults.json. The engine loads it with the next image. Typing filters the list; a repo id typed that
/// is not in the cache gets a last row that pulls it from the hub (`PullJob`).
public struct ModelPicker: Sendable, Equatable {
    /// A model found, with the defaults.json it carries (read by the session: the reducer does no I/O).
    public struct Item: Sendable, Equatable {
        public var entry: ModelCatalog.Entry
        public var defaults: ModelDefaults?
        /// Its prompt_guide.json, if it has one.
        public var guide: PromptGuide?
        public init(entry: ModelCatalog.Entry, defaults: ModelDefaults?, guide: PromptGuide? = nil) {
            (self.entry, self.defaults, self.guide) = (entry, defaults, guide)
        }
    }

    /// nil until the session's scan has answered.
    public var entries: [Item]?
    /// A row of `shown`, or the pull row after them.
    public var selected = 0
    public var query = TextEditor()

    public init() {}

    /// The entries whose model contains the typed text (all when nothing is typed).
    public var shown: [Item] {
        let text = query.text.trimmingCharacters(in: .whitespaces).lowercased()
        return (entries ?? []).filter { text.isEmpty || $0.entry.model.lowercased().contains(text) }
    }

    /// The typed repo id when it can be pulled: ORG/NAME and no model of that name is listed.
    public var pullable: String? {
        let text = query.text.trimmingCharacters(in: .whitespaces)
        guard entries != nil, HuggingFaceCache.isRepoID(text), !(entries ?? []).contains(where: { $0.entry.model == text }) else { return nil }
        return text
    }

    var rowCount: Int { shown.count + (pullable == nil ? 0 : 1) }

    /// With another query: the selected model stays selected while it is shown, else the first row is.
    func filtered(by query: TextEditor) -> ModelPicker {
        var picker = self
        picker.query = query
        let model = shown[safe: selected]?.entry.model
        picker.selected = picker.shown.firstIndex { $0.entry.model == model } ?? 0
        return picker
    }
}

/// The picker as a panel over the whole screen; it owns the pulls it starts (PullJob.swift).
extension ModelPicker: OverlayPanel {
    static let placement = Placement.wholeScreen
    var overlay: Overlay { .models(self) }

    /// F8 opens it afresh (open already: it looks again).
    func open(_ state: inout StudioState) -> Reaction {
        state.models = self
        return Reaction(effects: [.scanModels])
    }

    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction? {
        let picker = self
        switch action {
        case .up: state.models?.selected = max(0, picker.selected - 1)
        case .down: state.models?.selected = min(max(0, picker.rowCount - 1), picker.selected + 1)
        case .cancel:
            if picker.query.characters.isEmpty { state.models = nil } else { state.models = picker.filtered(by: TextEditor()) }
        case .newline:
            return choose(&state)
        case _ where action.actsInEveryPanel: return nil
        default:
            var query = picker.query
            guard query.apply(action, lineBreak: "") else { return Reaction.none }
            state.models = picker.filtered(by: query)
        }
        return Reaction()
    }

    /// Enter: the selected model becomes the studio's, or the pull row pulls.
    private func choose(_ state: inout StudioState) -> Reaction {
        if let repo = pullable, selected == shown.count { return startPull(&state, repo) }
        guard let item = shown[safe: selected] else { return Reaction.none }
        let entry = item.entry
        if let problem = entry.problem {
            state.status = Status(text: "\(entry.model): \(problem)", isError: true)
            return Reaction()
        }
        state.models = nil
        guard entry.model != state.model else { return Reaction() }
        if state.isRunning {
            state.status = Status(text: "A generation is running: switch models when it ends (Esc cancels it)", isError: true)
            return Reaction()
        }
        state.model = entry.model
        state.beforeRecipe = nil
        // The new model's defaults under the config; fields the user typed keep what they typed.
        if let defaults = item.defaults { state.switchModelLayer(to: GenerationSettings.Layer(.model, entry.model, SettingsLayer(defaults))) }
        state.promptGuide = item.guide
        state.status = Status(text: "Model: \(entry.model) (\(entry.kind)); it loads with the next image", isError: false)
        return Reaction()
    }

    /// The session's scan, and a pull's reports.
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction? {
        guard case let .modelsFound(entries) = action else { return receivePull(&state, action) }
        guard var picker = state.models else { return Reaction.none }
        picker.entries = entries
        // After a pull the new model is picked; otherwise the current one.
        let wanted = state.pulled ?? state.model
        picker.selected = picker.shown.firstIndex { $0.entry.model == wanted } ?? 0
        state.models = picker
        return Reaction()
    }

    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) { drawModelPicker(state, self, &buffer) }
}

extension StudioState {
    public var models: ModelPicker? {
        get { self[panel: ModelPicker.self] }
        set { self[panel: ModelPicker.self] = newValue }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// The picker over the body of the screen: one row per model with its kind, size and encoders.
func drawModelPicker(_ state: StudioState, _ picker: ModelPicker, _ buffer: inout CellBuffer) {
    let (columns, rows) = (state.columns, state.rows)
    buffer.fill(x: 0, y: 1, width: columns, height: rows - 2)
    let box = Rect(x: 0, y: 1, width: columns, height: rows - 4)
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "Models \(picker.entries?.count ?? 0)", role: .focusedBorder)
    let inner = box.inner
    let x = inner.x + buffer.put(" Find or pull (ORG/NAME): ", x: inner.x, y: inner.y + inner.height - 1, role: .fieldLabel)
    drawLine(picker.query, x: x, y: inner.y + inner.height - 1, width: inner.x + inner.width - x, &buffer)
    buffer.put("Up/Down pick · Enter switches (loads with the next image) or pulls · Esc closes · ● the current model",
               x: 0, y: rows - 3, role: .hint, limit: columns)
    guard let entries = picker.entries else {
        buffer.put("Looking for models…", x: inner.x + 1, y: inner.y, role: .hint)
        return
    }
    if entries.isEmpty {
        buffer.put("No models found: put a diffusers folder or a .safetensors checkpoint in \(state.modelsFolder)",
                   x: inner.x + 1, y: inner.y, role: .hint, limit: inner.width - 1)
    }
    let perEntry = 2, visible = max(1, (inner.height - 1) / perEntry)
    let top = max(0, picker.selected - visible + 1)
    let shown = picker.shown
    for (row, entry) in shown.map(\.entry).enumerated().dropFirst(top).prefix(visible) {
        let y = inner.y + (row - top) * perEntry
        let selected = row == picker.selected
        let mark = entry.model == state.model ? "● " : "  "
        buffer.put(mark + entry.model, x: inner.x, y: y, role: selected ? .focusedField : .field, limit: inner.width)
        let size = String(format: "%.2f GB", Double(entry.bytes) / 1e9)
        let detail = entry.problem.map { "cannot be used: \($0)" }
            ?? "\(entry.kind) · \(entry.layout) · \(size) · \(entry.encoders.isEmpty ? "no text encoders" : entry.encoders.joined(separator: ", "))"
        buffer.put("    " + detail, x: inner.x, y: y + 1, role: entry.problem == nil ? .hint : .statusError, limit: inner.width)
    }
    if let repo = picker.pullable, shown.count >= top, shown.count - top < visible {
        let y = inner.y + (shown.count - top) * perEntry
        let doing = state.pull?.repo == repo ? "pulling \(repo)…" : "⇣ pull \(repo) from the Hugging Face Hub"
        buffer.put("  " + doing, x: inner.x, y: y, role: picker.selected == shown.count ? .focusedField : .field, limit: inner.width)
        buffer.put("    not cached: Enter pulls it into the Hugging Face cache in the background" + (state.t5 == .off ? ", without T5" : ""),
                   x: inner.x, y: y + 1, role: .hint, limit: inner.width)
    }
}
