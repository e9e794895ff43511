import Foundation

/// The whole screen for a state and a size: a pure function (docs/architecture.md, Studio), snapshot-tested as text.
public func render(_ state: StudioState, columns: Int, rows: Int) -> CellBuffer {
    var buffer = CellBuffer(width: columns, height: rows)
    let layout = Layout(columns: columns, rows: rows)
    guard layout.fits else {
        let lines = ["The terminal is \(columns)×\(rows).", "SD3 Studio needs at least \(Layout.minimumColumns)×\(Layout.minimumRows).",
                     "Enlarge the window, or F10 to quit."]
        for (i, line) in lines.enumerated() {
            let width = CellWidth.of(line)
            buffer.put(line, x: max(0, (columns - width) / 2), y: max(0, rows / 2 - 1 + i), role: i == 0 ? .statusError : .normal)
        }
        return buffer
    }
    drawHeader(state, &buffer, layout)
    // The open panel, where it goes (OverlayPanel.swift): over the whole body, in place of the fields, or on the
    // progress row.
    let panel = state.overlay.panel
    let placement = panel.map { type(of: $0).placement }
    if let panel, placement == .wholeScreen {
        panel.render(state, &buffer, layout)
    } else {
        if let panel, placement == .left {
            panel.render(state, &buffer, layout)
        } else {
            for field in [FieldID.prompt, .negativePrompt] { drawEditor(state, field, &buffer, layout.editor(field)) }
            drawSettings(state, &buffer, layout)
        }
        if let grid = state.explore { drawGrid(grid, state.graphics, &buffer, layout) } else { drawPreview(state, &buffer, layout) }
    }
    // A pull's progress is the status line while it runs; an error still shows until the next message.
    let status = state.pull.flatMap { state.status.isError ? nil : Status(text: $0.line, isError: false) } ?? state.status
    let statusLines = wrapped(status.text, to: columns)
    // A status too long for its row takes the progress row too while nothing runs (it was cut at the edge) and no
    // panel is there.
    let twoRows = statusLines.count > 1 && !state.isRunning && state.training?.isActive != true && state.pull == nil && placement != .statusRow
    if let panel, placement == .statusRow {
        panel.render(state, &buffer, layout)
    } else if twoRows {
        buffer.put(statusLines[0], x: 0, y: layout.progressRow, role: status.isError ? .statusError : .status)
    } else {
        drawProgress(state, &buffer, layout)
    }
    let last = twoRows ? statusLines.dropFirst().joined(separator: " ") : status.text
    let shown = CellWidth.of(last) > columns ? CellWidth.truncate(last, to: columns - 1) + "…" : last
    buffer.put(shown, x: 0, y: layout.statusRow, role: status.isError ? .statusError : .status)
    if state.showHelp { drawHelp(&buffer, layout) }
    return buffer
}

private func drawHeader(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) {
    buffer.fill(x: 0, y: 0, width: layout.columns, height: 1, with: Cell(" ", .title))
    var keys = "F1 help  F5 generate  F2 star  F3/F4 browse  F10 quit "
    // Where the next image renders, once there is a choice (servers configured): "local" or "comfyui@HOST:PORT". It
    // and the model come before the key hints, which shrink to F1's when both do not fit.
    let backend = state.backends.isEmpty ? "" : " · \(state.backendLabel)"
    var model = state.modelName
    // At least a space between the title and the hints (a long model name ran into them at 80 columns).
    let title = " SD3 Studio · ".count + CellWidth.of(model) + CellWidth.of(backend)
    if title + 1 + CellWidth.of(keys) > layout.columns { keys = "F1 help " }
    let room = layout.columns - CellWidth.of(keys) - 1 - " SD3 Studio · ".count - CellWidth.of(backend)
    if CellWidth.of(model) > room { model = CellWidth.truncate(model, to: max(1, room - 1)) + "…" }
    buffer.put(" SD3 Studio · \(model)\(backend)", x: 0, y: 0, role: .title)
    buffer.put(keys, x: layout.columns - CellWidth.of(keys), y: 0, role: .title)
}

private func drawEditor(_ state: StudioState, _ field: FieldID, _ buffer: inout CellBuffer, _ box: Rect) {
    let focused = state.focus == field
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: field.label, role: focused ? .focusedBorder : .border)
    guard let editor = state.editors[field] else { return }
    let inner = box.inner
    let rows = editor.rows(width: inner.width)
    let (cursorRow, cursorColumn) = editor.location(width: inner.width)
    // Scroll only as far as needed to keep the cursor's row visible.
    let top = max(0, cursorRow - inner.height + 1)
    for (i, row) in rows.dropFirst(top).prefix(inner.height).enumerated() {
        buffer.put(editor.line(row), x: inner.x, y: inner.y + i, role: .field, limit: inner.width)
    }
    if field == .prompt, let guide = state.promptGuide {
        // What the model understands: an example while the prompt is empty (focused or not: that is when it
        // helps), the words it knows on the bottom border while the prompt uses none of them.
        if editor.characters.isEmpty, let example = guide.examples.first {
            for (i, line) in wordWrapped("e.g. " + example, to: inner.width).prefix(inner.height).enumerated() {
                buffer.put(line, x: inner.x, y: inner.y + i, role: .hint, limit: inner.width)
            }
        } else if !editor.characters.isEmpty, !guide.groups.isEmpty, !guide.knowsAnyWord(of: editor.text) {
            buffer.put(" " + guide.hint(width: box.width - 6) + " ", x: box.x + 2, y: box.y + box.height - 1, role: .hint, limit: box.width - 4)
        }
    } else if editor.characters.isEmpty, !focused {
        buffer.put(field == .prompt ? "what to draw" : "what to avoid", x: inner.x, y: inner.y, role: .hint)
    }
    if focused { buffer.cursor = (inner.x + cursorColumn, inner.y + cursorRow - top) }
}

private func drawSettings(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) {
    let box = layout.settings
    let focused = Layout.settingsFields.contains(state.focus)
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "Settings" + state.loraSummary,
               role: focused ? .focusedBorder : .border)
    for field in Layout.settingsFields {
        guard let cell = layout.settingsCell(field) else { continue }
        let label = field.label + " "
        let labelWidth = 11
        buffer.put(label, x: cell.x + 1, y: cell.y, role: .fieldLabel, limit: labelWidth)
        let valueX = cell.x + 1 + labelWidth, valueWidth = cell.width - labelWidth - 1
        let isFocused = state.focus == field
        let role: Role = isFocused ? .focusedField : .field
        buffer.fill(x: valueX, y: cell.y, width: valueWidth, height: 1, with: Cell(" ", role))
        if let editor = state.editors[field] {
            // Single-line fields show their tail when the text is longer than the cell (paths, mostly).
            let before = String(editor.characters[..<editor.cursor]), text = editor.text
            var shown = text, offset = 0
            while CellWidth.of(shown) > valueWidth - 1, !shown.isEmpty, CellWidth.of(before) - offset > valueWidth / 2 {
                offset += CellWidth.of(shown.removeFirst())
            }
            if text.isEmpty, let meaning = field.emptyMeaning { buffer.put(meaning, x: valueX, y: cell.y, role: isFocused ? role : .hint) }
            buffer.put(shown, x: valueX, y: cell.y, role: role, limit: valueWidth)
            if isFocused { buffer.cursor = (min(valueX + CellWidth.of(before) - offset, valueX + valueWidth - 1), cell.y) }
        } else {
            buffer.put(choiceText(state, field), x: valueX, y: cell.y, role: role, limit: valueWidth)
        }
    }
    // Where the focused setting's value came from, on the box's lower edge ("steps: model defaults").
    if focused, let origin = state.origin(of: state.focus) {
        let text = " \(state.focus.label.lowercased()): \(origin) "
        if CellWidth.of(text) <= box.width - 4 { buffer.put(text, x: box.x + box.width - 2 - CellWidth.of(text), y: box.y + box.height - 1, role: .hint) }
    }
}

func choiceText(_ state: StudioState, _ field: FieldID) -> String {
    switch field {
    case .seedMode: return state.seedMode.rawValue
    case .t5: return state.t5.rawValue
    case .precision: return state.precision.rawValue
    case .recipe: return state.recipe.flatMap { state.recipes[safe: $0]?.recipe.name } ?? "none"
    case .scheduler: return state.scheduler.rawValue
    case .sizePreset:
        guard let i = state.sizePresetIndex else { return "custom" }
        return "\(SizePresets.all[i].width)×\(SizePresets.all[i].height)"
    default: return ""
    }
}

private func drawPreview(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) {
    let box = layout.preview
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "Preview")
    let area = layout.image
    let caption: String
    let captionRole: Role
    if state.trainingPanel != nil, let validation = state.training?.validation {
        // The training panel shows its job's last validation image.
        SymbolArt.draw(validation.image, into: &buffer, area: area, mode: state.graphics)
        caption = "validation · step \(validation.step) · " + URL(fileURLWithPath: validation.path).lastPathComponent
        captionRole = .hint
    } else if let image = state.preview {
        SymbolArt.draw(image, into: &buffer, area: area, mode: state.graphics)
        if case .finished = state.job, let current = state.current {
            caption = (current.favorite ? "★ " : "") + URL(fileURLWithPath: current.file).lastPathComponent
            captionRole = current.favorite ? .favorite : .hint
        } else if state.isRunning {
            caption = "x0 preview \(image.width)×\(image.height)"
            captionRole = .hint
        } else {
            caption = "\(image.width)×\(image.height)"
            captionRole = .hint
        }
    } else {
        buffer.put("No image yet: F5 makes one", x: area.x + 1, y: area.y + area.height / 2, role: .hint, limit: area.width - 1)
        caption = ""
        captionRole = .hint
    }
    buffer.put(caption, x: area.x + 1, y: area.y + area.height, role: captionRole, limit: area.width - 1)
}

private func drawProgress(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) {
    let y = layout.progressRow
    if !state.isRunning, let training = state.training, training.isActive {
        drawTrainingProgress(training, &buffer, layout)
        return
    }
    switch state.job {
    case .idle:
        buffer.put("Ready", x: 0, y: y, role: .progressText)
    case .cancelling:
        buffer.put("Cancelling…", x: 0, y: y, role: .progressText)
    case let .finished(seconds):
        buffer.put(String(format: "Finished in %.1f s", seconds), x: 0, y: y, role: .progressText)
    case let .failed(message):
        // The failure itself: the status line below may have moved on to a later message.
        buffer.put(CellWidth.truncate("Failed: " + message, to: layout.columns), x: 0, y: y, role: .statusError)
    case let .running(phase):
        switch phase {
        case .starting: buffer.put("Starting…", x: 0, y: y, role: .progressText)
        case .loading: buffer.put("Loading the model…", x: 0, y: y, role: .progressText)
        case .encoding: buffer.put("Encoding the prompt…", x: 0, y: y, role: .progressText)
        case .decoding: buffer.put("Decoding the image…", x: 0, y: y, role: .progressText)
        case let .denoising(step, total, elapsed):
            let perStep = elapsed / Double(max(step, 1))
            let label = String(format: "step %d/%d ", step, total)
            let times = String(format: " %.2f s/step  ETA %.0f s", perStep, perStep * Double(total - step))
            let barWidth = max(10, layout.columns - CellWidth.of(label) - CellWidth.of(times) - 2)
            let filled = barWidth * step / max(total, 1)
            var x = buffer.put(label, x: 0, y: y, role: .progressText)
            x += buffer.put(String(repeating: "█", count: filled), x: x, y: y, role: .progressBar)
            x += buffer.put(String(repeating: "░", count: barWidth - filled), x: x, y: y, role: .border)
            buffer.put(times, x: x, y: y, role: .progressText)
        }
    }
}

/// A training job's line while no generation runs: its step, bar, loss and time left.
private func drawTrainingProgress(_ run: TrainingRun, _ buffer: inout CellBuffer, _ layout: Layout) {
    let y = layout.progressRow
    guard run.phase == .training || run.phase == .stopping else {
        let what = if case let .preparing(text) = run.phase { text } else { "stopping" }
        buffer.put("Training \(run.request.name): \(what)…", x: 0, y: y, role: .progressText, limit: layout.columns)
        return
    }
    let label = "train \(run.request.name) \(run.step)/\(run.steps) "
    var times = run.losses.last.map { String(format: " loss %.4f", $0) } ?? ""
    if let perStep = run.secondsPerStep, let eta = run.eta { times += String(format: "  %.2f s/step  ETA %.0f s", perStep, eta) }
    let barWidth = max(10, layout.columns - CellWidth.of(label) - CellWidth.of(times) - 1)
    let filled = barWidth * run.step / max(run.steps, 1)
    var x = buffer.put(label, x: 0, y: y, role: .progressText, limit: layout.columns)
    x += buffer.put(String(repeating: "█", count: filled), x: x, y: y, role: .progressBar)
    x += buffer.put(String(repeating: "░", count: barWidth - filled), x: x, y: y, role: .border)
    buffer.put(times, x: x, y: y, role: .progressText, limit: max(0, layout.columns - x))
}

/// The help overlay, generated from the binding table: one binding a line when they fit, else packed several
/// to a line (80×24 has fewer rows than the table has bindings).
private func drawHelp(_ buffer: inout CellBuffer, _ layout: Layout) {
    // The box covers the fields: a text cursor left under it would blink on the box (xterm shows it on the title row).
    buffer.cursor = nil
    let entries = Bindings.table.map { ($0.keys.map(\.name).joined(separator: ", "), $0.help) }
    let keyWidth = entries.map { CellWidth.of($0.0) }.max() ?? 0
    let oneALine = entries.count + 3 <= layout.rows
    let width = oneALine ? min(layout.columns - 4, keyWidth + 3 + (entries.map { CellWidth.of($0.1) }.max() ?? 0) + 4) : layout.columns - 4
    var lines: [[(String, String)]] = []
    for entry in entries {
        let size = CellWidth.of(entry.0) + 2 + CellWidth.of(entry.1)
        if !oneALine, var last = lines.last, last.reduce(0, { $0 + CellWidth.of($1.0) + 2 + CellWidth.of($1.1) + 3 }) + size <= width - 4 {
            last.append(entry)
            lines[lines.count - 1] = last
        } else {
            lines.append([entry])
        }
    }
    let height = min(layout.rows, lines.count + 3)
    let x = (layout.columns - width) / 2, y = (layout.rows - height) / 2
    buffer.fill(x: x, y: y, width: width, height: height, with: Cell(" ", .help))
    buffer.box(x: x, y: y, width: width, height: height, title: "Help: keys", role: .focusedBorder)
    for (i, line) in lines.prefix(height - 3).enumerated() {
        var column = x + 2
        for entry in line {
            column += buffer.put(entry.0, x: column, y: y + 1 + i, role: .fieldLabel)
            column = oneALine ? x + 2 + keyWidth + 3 : column + 2
            column += buffer.put(entry.1, x: column, y: y + 1 + i, role: .help, limit: x + width - 2 - column) + 3
        }
    }
    buffer.put("Left/Right or Space change choices · F1 or Esc closes", x: x + 2, y: y + height - 2, role: .hint, limit: width - 4)
}

/// `text` in lines of at most `columns` cells, broken at spaces (a word longer than a line is cut).
func wordWrapped(_ text: String, to columns: Int) -> [String] {
    guard columns > 0 else { return [] }
    var lines: [String] = [], line = ""
    for word in text.split(separator: " ").map(String.init) {
        let candidate = line.isEmpty ? word : line + " " + word
        if CellWidth.of(candidate) <= columns { line = candidate; continue }
        if !line.isEmpty { lines.append(line) }
        line = CellWidth.of(word) <= columns ? word : CellWidth.truncate(word, to: columns)
    }
    if !line.isEmpty { lines.append(line) }
    return lines
}

/// `text` cut into lines of `columns` cells, the first full: a path or a key name stays in one piece as far as the
/// row goes, and the rest follows on the next.
func wrapped(_ text: String, to columns: Int) -> [String] {
    var lines: [String] = []
    var rest = Substring(text)
    while !rest.isEmpty {
        let line = CellWidth.truncate(String(rest), to: columns)
        guard !line.isEmpty else { break }  // a character wider than the row
        lines.append(line)
        rest = rest.dropFirst(line.count)
    }
    return lines.isEmpty ? [""] : lines
}
