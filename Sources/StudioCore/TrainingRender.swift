import Foundation

/// The training panel in the place of the fields (the preview beside it shows the validation images):
///
///     ┌ Train a LoRA · tiny-sd3 ───────────────┐
///     │ Data folder /data/stripes              │   ten fields, the focused one highlighted
///     │ Captions    .txt files                 │
///     │ …                                      │
///     │ Output      → …ras/stripes.safetensors │   empty: the data folder's name, in the LoRA folder
///     │ step 20/50  1.20 s/step  ETA 36 s      │
///     │ ▇▆▅▅▄▃▃▄▂▂▁▂▁                          │   the loss of each step (columns averaged when
///     │ loss 0.4123 (0.31–0.62) · checkpoint 20│   there are more steps than columns), up to 4 rows
///     │ Enter trains · Tab next · Esc closes   │   (while it runs: Esc stops, keeping a checkpoint)
///     └────────────────────────────────────────┘
func drawTrainingPanel(_ state: StudioState, _ panel: TrainingPanel, _ buffer: inout CellBuffer, _ box: Rect) {
    buffer.fill(x: box.x, y: box.y, width: box.width, height: box.height)
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "Train a LoRA · \(state.localModelName)", role: .focusedBorder)
    let inner = box.inner
    let labelWidth = 12, valueX = inner.x + 1 + labelWidth, valueWidth = inner.width - 1 - labelWidth
    let form = state.trainingForm
    for (row, field) in TrainingField.allCases.enumerated() where row < inner.height {
        let y = inner.y + row, focused = panel.focus == field
        buffer.put(field.label, x: inner.x + 1, y: y, role: .fieldLabel, limit: labelWidth)
        let role: Role = focused ? .focusedField : .field
        buffer.fill(x: valueX, y: y, width: valueWidth, height: 1, with: Cell(" ", role))
        guard field != .captions else {
            buffer.put(form.captions.rawValue, x: valueX, y: y, role: role, limit: valueWidth)
            continue
        }
        let editor = form.editors[field] ?? TextEditor()
        if editor.characters.isEmpty, let hint = trainingHint(state, field, width: valueWidth) {
            buffer.put(hint, x: valueX, y: y, role: focused ? role : .hint, limit: valueWidth)
        }
        // A long value (a path) shows the part around the cursor.
        let before = String(editor.characters[..<editor.cursor])
        var shown = editor.text, offset = 0
        while CellWidth.of(shown) > valueWidth - 1, !shown.isEmpty, CellWidth.of(before) - offset > valueWidth / 2 {
            offset += CellWidth.of(shown.removeFirst())
        }
        buffer.put(shown, x: valueX, y: y, role: role, limit: valueWidth)
        if focused { buffer.cursor = (min(valueX + CellWidth.of(before) - offset, valueX + valueWidth - 1), y) }
    }
    let footer = inner.y + inner.height - 1
    let top = inner.y + TrainingField.allCases.count + 1
    if let run = state.training, top < footer {
        drawTrainingRun(run, &buffer, Rect(x: inner.x + 1, y: top, width: inner.width - 2, height: footer - top))
    }
    let keys = state.training?.isActive == true ? "Esc stops, keeping a checkpoint" : "Enter trains · Tab next · Esc closes"
    buffer.put(" " + keys, x: inner.x, y: footer, role: .hint, limit: inner.width)
}

/// What an empty field means.
private func trainingHint(_ state: StudioState, _ field: TrainingField, width: Int) -> String? {
    switch field {
    case .data: "folder of images and .txt captions"
    case .instancePrompt: state.trainingForm.captions == .files ? "for images without a .txt" : "the prompt of every image"
    case .validationPrompt: "none: no preview images"
    case .output:
        (try? trainingOutput("", data: state.trainingForm.text(.data).trimmingCharacters(in: .whitespaces), folder: state.loraFolder))
            .map { "→ " + tail($0, width: width - 2) } ?? "NAME, in the LoRA folder"
    default: nil
    }
}

/// The end of a path that fits `width` columns, "…" marking what was cut.
private func tail(_ path: String, width: Int) -> String {
    guard CellWidth.of(path) > width, width > 1 else { return path }
    var shown = Substring(path)
    while CellWidth.of(String(shown)) > width - 1, !shown.isEmpty { shown = shown.dropFirst() }
    return "…" + shown
}

/// The job's progress line, its loss sparkline and a summary line, in `area`.
private func drawTrainingRun(_ run: TrainingRun, _ buffer: inout CellBuffer, _ area: Rect) {
    let line: String, role: Role
    switch run.phase {
    case let .preparing(what):
        (line, role) = ("Preparing: \(what)…", .progressText)
    case .training, .stopping, .finished, .stopped:
        var parts = ["step \(run.step)/\(run.steps)"]
        if let perStep = run.secondsPerStep { parts.append(String(format: "%.2f s/step", perStep)) }
        switch run.phase {
        case .stopping: parts.append("stopping…")
        case .finished: parts.append("done")
        case .stopped: parts.append("stopped")
        default: if let eta = run.eta { parts.append(String(format: "ETA %.0f s", eta)) }
        }
        (line, role) = (parts.joined(separator: "  "), .progressText)
    case let .failed(message):
        (line, role) = ("Failed: \(message)", .statusError)
    }
    buffer.put(line, x: area.x, y: area.y, role: role, limit: area.width)
    let plotRows = max(0, min(4, area.height - 2))
    guard plotRows > 0, !run.losses.isEmpty else { return }
    for (i, text) in Sparkline.rows(run.losses, width: area.width, height: plotRows).enumerated() {
        buffer.put(text, x: area.x, y: area.y + 1 + i, role: .progressBar, limit: area.width)
    }
    let low = run.losses.min()!, high = run.losses.max()!
    var summary = String(format: "loss %.4f (%.2f–%.2f)", run.losses.last!, low, high)
    if run.checkpointPath != nil { summary += " · checkpoint \(run.checkpointStep)" }
    buffer.put(summary, x: area.x, y: area.y + 1 + plotRows, role: .hint, limit: area.width)
}

/// Block-character sparklines: each column one step (or the mean of a run of steps when there are more steps than
/// columns), its height scaled between the lowest and highest value, in eighths of a row (▁ to █).
public enum Sparkline {
    static let eighths: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// `values` in at most `width` columns: column i is the mean of values[i·n/w ..< (i+1)·n/w].
    public static func columns(_ values: [Float], width: Int) -> [Double] {
        guard width > 0, !values.isEmpty else { return [] }
        guard values.count > width else { return values.map(Double.init) }
        return (0..<width).map { i in
            let slice = values[i * values.count / width ..< (i + 1) * values.count / width]
            return slice.reduce(0.0) { $0 + Double($1) } / Double(slice.count)
        }
    }

    /// `height` rows of text, top first; the lowest value still gets one eighth so every step shows.
    public static func rows(_ values: [Float], width: Int, height: Int) -> [String] {
        let columns = columns(values, width: width)
        guard let low = columns.min(), let high = columns.max(), height > 0 else { return [] }
        let levels = height * 8
        let heights = columns.map { value -> Int in
            guard high > low, value.isFinite else { return levels / 2 }
            return max(1, Int(((value - low) / (high - low) * Double(levels - 1)).rounded()) + 1)
        }
        return (0..<height).map { row in
            let base = (height - 1 - row) * 8
            return String(heights.map { eighths[min(8, max(0, $0 - base))] })
        }
    }
}
