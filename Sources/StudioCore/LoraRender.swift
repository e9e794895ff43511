import Foundation
import SD3

/// The LoRA panel in the place of the fields (the preview stays visible while strengths change):
///
///     ┌ LoRAs 2 on of 3 ─────────────────┐
///     │ on   0.50  style                 │   one row a LoRA, the selected one with its file below
///     │ off  1.00  detail                │
///     │ Files in the LoRA folder         │
///     │ +          other                 │   Enter adds
///     │ Space on/off · Left/Right ±0.05  │
///     │ Add: ▏                           │   a path or name, or a strength
///     └──────────────────────────────────┘
func drawLoraPanel(_ state: StudioState, _ panel: LoraPanel, _ buffer: inout CellBuffer, _ box: Rect) {
    buffer.fill(x: box.x, y: box.y, width: box.width, height: box.height)
    let on = state.loras.filter(\.enabled).count
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "LoRAs \(on) on of \(state.loras.count)", role: .focusedBorder)
    let inner = box.inner
    var lines: [(text: String, role: Role)] = []
    var selectedLine = 0
    for (i, entry) in state.loras.enumerated() {
        let selected = i == panel.selected
        if selected { selectedLine = lines.count }
        let mark = entry.path == nil ? "miss" : entry.enabled ? "on  " : "off "
        lines.append((" \(mark) \(String(format: "%5.2f", entry.strength))  \(entry.name)", selected ? .focusedField : entry.enabled ? .field : .hint))
        if selected {
            let about = [entry.layout, entry.hash].filter { !$0.isEmpty }.map { $0 + " · " }.joined()
            let detail = entry.path.map { about + tail($0, width: inner.width - 6 - CellWidth.of(about)) }
                ?? "not found on this machine: add its file, or Space turns it off"
            lines.append(("      " + detail, entry.path == nil ? .statusError : .hint))
        }
    }
    if state.loras.isEmpty { lines.append((" No LoRAs yet: pick a file below or type a path", .hint)) }
    lines.append((" Files in the LoRA folder (Enter adds)", .fieldLabel))
    if panel.candidates == nil {
        lines.append((" Looking…", .hint))
    } else if state.loraCandidates.isEmpty {
        lines.append((" " + (panel.candidates!.isEmpty ? "none in \(panel.folder)" : "all in the list"), .hint))
    }
    for (i, candidate) in state.loraCandidates.enumerated() {
        let selected = state.loras.count + i == panel.selected
        if selected { selectedLine = lines.count }
        lines.append((" +           \(candidate.name)", selected ? .focusedField : .field))
    }
    let footer = ["Space on/off · Left/Right strength ±0.05", "Delete removes · Enter adds · Esc closes"]
    let listHeight = max(1, inner.height - footer.count - 1)
    let top = max(0, min(selectedLine + 1 - listHeight + 1, lines.count - listHeight))
    for (row, line) in lines.dropFirst(top).prefix(listHeight).enumerated() {
        if line.role == .focusedField { buffer.fill(x: inner.x, y: inner.y + row, width: inner.width, height: 1, with: Cell(" ", .focusedField)) }
        buffer.put(line.text, x: inner.x, y: inner.y + row, role: line.role, limit: inner.width)
    }
    for (i, text) in footer.enumerated() {
        buffer.put(" " + text, x: inner.x, y: inner.y + listHeight + i, role: .hint, limit: inner.width)
    }
    let y = inner.y + inner.height - 1
    let x = inner.x + buffer.put(" Add: ", x: inner.x, y: y, role: .fieldLabel)
    drawLine(panel.input, x: x, y: y, width: inner.x + inner.width - x, &buffer)
}

/// The end of a path that fits `width` columns, "…" marking what was cut.
private func tail(_ path: String, width: Int) -> String {
    guard CellWidth.of(path) > width, width > 1 else { return path }
    var shown = Substring(path)
    while CellWidth.of(String(shown)) > width - 1, !shown.isEmpty { shown = shown.dropFirst() }
    return "…" + shown
}
