/// Where each setting came from (Ctrl-X), as `sd3 generate --explain` prints it: every field with its value and its
/// layer (built-in, model defaults, config file, recalled PNG, recipe) or "typed"/"chosen" once changed here. Enter
/// goes to the selected field. It takes the place of the fields; the preview stays beside it.
public struct SourcesPanel: Sendable, Equatable {
    public var selected = 0
    /// The status line before it opened, shown again when it closes if its hint is still there (a report since, such
    /// as a generation's start, stays).
    var statusBefore: Status?
    static let hint = Status(text: "Where each setting came from: Up/Down pick, Enter edits the field, Esc closes", isError: false)
    public init(selected: Int = 0) { self.selected = selected }

    /// The fields it lists, in the order the studio shows them (the size preset is the width and height).
    static let fields: [FieldID] = [.prompt, .negativePrompt] + Layout.settingsFields.filter { $0 != .sizePreset }
}

extension SourcesPanel: OverlayPanel {
    static let placement = Placement.left
    var overlay: Overlay { .sources(self) }

    /// Pressed again it closes; it opens on the focused field.
    func open(_ state: inout StudioState) -> Reaction {
        if let open = state.sourcesPanel {
            _ = closing(&state)
            open.restoreStatus(&state)
            return Reaction()
        }
        // The size preset is the width and height.
        var panel = SourcesPanel(selected: Self.fields.firstIndex(of: state.focus == .sizePreset ? .width : state.focus) ?? 0)
        panel.statusBefore = state.status
        state.sourcesPanel = panel
        state.status = Self.hint
        return Reaction()
    }

    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction? {
        switch action {
        case .up, .previousField:
            state.sourcesPanel?.selected = max(0, selected - 1)
        case .down, .nextField:
            state.sourcesPanel?.selected = min(Self.fields.count - 1, selected + 1)
        case .cancel:
            state.sourcesPanel = nil
            restoreStatus(&state)
        case .newline:
            state.sourcesPanel = nil
            state.focus = Self.fields[selected]
            restoreStatus(&state)
        case .insert, .backspace, .delete, .left, .right, .home, .end, .wordLeft, .wordRight, .deleteToLineStart, .deleteToLineEnd:
            return Reaction.none  // nothing to type here
        default:
            return nil
        }
        return Reaction()
    }

    ///     ┌─ Where the settings came from ───────────┐
    ///     │ Prompt     a red circle…  recalled PNG   │   one row a field: label, value, source
    ///     │ Steps      8              recipe         │   the selected row highlighted
    ///     │ …                                        │
    ///     │ Steps: recipe · hyper-8                  │   the selected row's file or recipe, or what it was
    ///     │ Up/Down · Enter edits · Esc closes       │
    ///     └──────────────────────────────────────────┘
    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) {
        let box = layout.left, inner = layout.left.inner
        buffer.fill(x: box.x, y: box.y, width: box.width, height: box.height)
        buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "Where the settings came from", role: .focusedBorder)
        let sources = Self.fields.map { state.origin(of: $0) ?? "—" }
        // One column of margin on each side, two between the columns.
        let labelWidth = 11, sourceWidth = min(sources.map(CellWidth.of).max() ?? 0, inner.width - 2 - labelWidth - 2 - 8)
        let valueWidth = max(1, inner.width - 2 - labelWidth - 2 - sourceWidth)
        // The selected field's source below the list, on as many lines as the list leaves (one at 80×24).
        let room = max(1, inner.height - 1 - Self.fields.count)
        let detail = Self.lines(Self.detail(state, Self.fields[selected]), width: inner.width - 2, most: room)
        let listHeight = max(1, inner.height - 1 - detail.count)
        let top = max(0, min(selected - listHeight + 1, Self.fields.count - listHeight))
        for (row, index) in Self.fields.indices.dropFirst(top).prefix(listHeight).enumerated() {
            let field = Self.fields[index], y = inner.y + row
            let role: Role = index == selected ? .focusedField : .field
            if index == selected { buffer.fill(x: inner.x, y: y, width: inner.width, height: 1, with: Cell(" ", role)) }
            let label = field == .negativePrompt ? "Negative" : field.label
            buffer.put(label, x: inner.x + 1, y: y, role: index == selected ? role : .fieldLabel, limit: labelWidth)
            var value = state.shown(field).replacingOccurrences(of: "\n", with: " ⏎ ")
            if value.isEmpty { value = field.emptyMeaning ?? "" }
            if CellWidth.of(value) > valueWidth { value = CellWidth.truncate(value, to: max(0, valueWidth - 1)) + "…" }
            buffer.put(value, x: inner.x + 1 + labelWidth, y: y, role: role, limit: valueWidth)
            buffer.put(sources[index], x: inner.x + inner.width - 1 - sourceWidth, y: y, role: index == selected ? role : .hint, limit: sourceWidth)
        }
        // Under the list, after a blank line where there is room.
        let shownRows = min(listHeight, Self.fields.count - top)
        let detailY = inner.y + shownRows + (inner.height - 1 - shownRows > detail.count ? 1 : 0)
        for (i, line) in detail.enumerated() { buffer.put(line, x: inner.x + 1, y: detailY + i, role: .hint, limit: inner.width - 2) }
        buffer.put(" Up/Down pick · Enter edits · Esc closes", x: inner.x, y: inner.y + inner.height - 1, role: .hint, limit: inner.width)
    }

    func replaced(_ state: inout StudioState) { restoreStatus(&state) }

    private func restoreStatus(_ state: inout StudioState) {
        if state.status == Self.hint, let statusBefore { state.status = statusBefore }
    }

    /// `text` in at most `most` lines of `width` cells with every character kept: broken between words when each word
    /// fits a line, else (a long path) cut by cells; when it is longer than the lines, its middle gives way to "…"
    /// (a file's name is at its end).
    static func lines(_ text: String, width: Int, most: Int) -> [String] {
        guard width > 0, most > 0 else { return [] }
        let words = wordWrapped(text, to: width)
        if words.count <= most, words.joined(separator: " ") == text { return words }
        return wrapped(middleCut(text, to: width * most), to: width)
    }

    /// `text` in at most `width` cells, its middle replaced by "…".
    static func middleCut(_ text: String, to width: Int) -> String {
        guard CellWidth.of(text) > width else { return text }
        let tailWidth = (width - 1) / 2
        let tail = String(CellWidth.truncate(String(text.reversed()), to: tailWidth).reversed())
        return CellWidth.truncate(text, to: width - 1 - CellWidth.of(tail)) + "…" + tail
    }

    /// The selected field's source in full: its file or recipe, or for a value changed here what it was and whose.
    static func detail(_ state: StudioState, _ field: FieldID) -> String {
        guard let known = state.provenance[field], let origin = state.origin(of: field) else { return "\(field.label): set in the studio" }
        guard known.text == state.shown(field) else {
            let was = known.text.isEmpty ? field.emptyMeaning ?? "empty" : known.text
            return "\(field.label): \(origin) here; was \(CellWidth.of(was) > 24 ? CellWidth.truncate(was, to: 23) + "…" : was) from \(known.fullLabel)"
        }
        return "\(field.label): \(known.fullLabel)"
    }
}

extension StudioState {
    public var sourcesPanel: SourcesPanel? {
        get { self[panel: SourcesPanel.self] }
        set { self[panel: SourcesPanel.self] = newValue }
    }
}
