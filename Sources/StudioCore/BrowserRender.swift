import Foundation
import ImageMetadata
import SD3

/// The favorites/history browser over the whole body of the screen: the list with thumbnails on the left, the
/// selected image and its parameters on the right, the keys (or the question being asked) below.
func drawBrowser(_ state: StudioState, _ browser: Browser, _ buffer: inout CellBuffer) {
    let layout = BrowserLayout(columns: state.columns, rows: state.rows)
    buffer.fill(x: 0, y: 1, width: state.columns, height: state.rows - 2)
    let shown = browser.shown
    let total = browser.records?.count ?? 0
    let search = browser.query.isEmpty ? "type to search" : "search: \(browser.query)"
    let title = "\(browser.kind.title) \(shown.count)/\(total) · \(search)"
    buffer.box(x: layout.list.x, y: layout.list.y, width: layout.list.width, height: layout.list.height, title: title, role: .focusedBorder)
    let inner = layout.list.inner
    if browser.records == nil {
        buffer.put("Loading…", x: inner.x + 1, y: inner.y, role: .hint)
    } else if shown.isEmpty {
        let empty = total == 0
            ? (browser.kind == .favorites ? "No favorites yet: F2 stars the current image" : "No history yet: F5 makes an image")
            : "Nothing matches “\(browser.query)”: Backspace widens the search"
        buffer.put(empty, x: inner.x + 1, y: inner.y, role: .hint, limit: inner.width - 1)
    }
    let top = layout.top(selected: browser.selected)
    for (row, record) in shown.dropFirst(top).prefix(layout.visibleCount).enumerated() {
        let y = inner.y + row * BrowserLayout.entryHeight
        drawEntry(state, browser, record, selected: top + row == browser.selected, Rect(x: inner.x, y: y, width: inner.width, height: 3), &buffer)
    }
    if let record = browser.current { drawDetails(state, browser, record, layout, &buffer) } else {
        buffer.box(x: layout.preview.x, y: layout.preview.y, width: layout.preview.width, height: layout.preview.height, title: "Image")
    }
    drawBrowserHint(browser, layout, &buffer)
}

private func drawEntry(_ state: StudioState, _ browser: Browser, _ record: HistoryRecord, selected: Bool, _ box: Rect, _ buffer: inout CellBuffer) {
    let role: Role = selected ? .focusedField : .field
    if selected { buffer.fill(x: box.x, y: box.y, width: box.width, height: box.height, with: Cell(" ", role)) }
    let thumb = Rect(x: box.x, y: box.y, width: BrowserLayout.thumbnailWidth, height: box.height)
    if let image = browser.thumbnails[record.id] {
        // One pixel image at a time (the selected one, on the right): list thumbnails are half blocks then.
        SymbolArt.draw(image, into: &buffer, area: thumb, mode: state.graphics.isPixelProtocol ? .symbols : state.graphics)
    } else {
        buffer.put(browser.requested.contains(record.id) && browser.thumbnails[record.id] == nil ? "  ··  " : "", x: thumb.x, y: thumb.y + 1, role: .hint)
    }
    let x = box.x + BrowserLayout.thumbnailWidth + 1, width = box.width - BrowserLayout.thumbnailWidth - 1
    let m = record.metadata
    var used = buffer.put("#\(record.id) ", x: x, y: box.y, role: selected ? role : .fieldLabel)
    if record.favorite { used += buffer.put("★ ", x: x + used, y: box.y, role: selected ? role : .favorite) }
    buffer.put(m.prompt.replacingOccurrences(of: "\n", with: " "), x: x + used, y: box.y, role: role, limit: width - used)
    let details = "seed \(m.seed) · \(m.width)×\(m.height) · \(m.steps) steps · \(shortDate(record.date))"
    buffer.put(details, x: x, y: box.y + 1, role: selected ? role : .hint, limit: width)
    if !record.note.isEmpty { buffer.put("✎ " + record.note, x: x, y: box.y + 2, role: selected ? role : .hint, limit: width) }
}

private func drawDetails(_ state: StudioState, _ browser: Browser, _ record: HistoryRecord, _ layout: BrowserLayout, _ buffer: inout CellBuffer) {
    let box = layout.preview
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "#\(record.id)" + (record.favorite ? " ★" : ""))
    if let image = browser.thumbnails[record.id] {
        SymbolArt.draw(image, into: &buffer, area: layout.image, mode: state.graphics)
    } else if browser.missing.contains(record.id) {
        buffer.put("(the PNG is missing or unreadable)", x: layout.image.x + 1, y: layout.image.y, role: .hint, limit: layout.image.width - 1)
    }
    let m = record.metadata
    var lines = [URL(fileURLWithPath: record.file).lastPathComponent,
                 "seed \(m.seed) · \(m.width)×\(m.height) · \(m.steps) steps · cfg \(RecalledParameters.number(m.guidanceScale))",
                 "shift \(RecalledParameters.number(m.shift)) · T5 \(T5Mode(t5: m.t5, weights: m.t5Weights).rawValue) · \(m.precision) · \(m.model)"]
    if let seconds = m.seconds { lines.append(String(format: "%.1f s · ", seconds) + shortDate(record.date)) }
    if !m.negativePrompt.isEmpty { lines.append("neg: " + m.negativePrompt.replacingOccurrences(of: "\n", with: " ")) }
    if !record.note.isEmpty { lines.append("note: " + record.note) }
    let inner = box.inner
    let y0 = layout.image.y + layout.image.height
    for (i, line) in lines.prefix(max(0, inner.y + inner.height - y0)).enumerated() {
        buffer.put(line, x: inner.x + 1, y: y0 + i, role: i == 0 ? .fieldLabel : .hint, limit: inner.width - 1)
    }
}

private func drawBrowserHint(_ browser: Browser, _ layout: BrowserLayout, _ buffer: inout CellBuffer) {
    let y = layout.hintRow
    switch browser.mode {
    case .browsing:
        let keys = "↑↓ pick · Enter recall · Del delete · F2 star · Ctrl-N note · Esc close · F3 favorites · F4 history"
        buffer.put(keys, x: 0, y: y, role: .hint, limit: buffer.width)
    case let .confirmDelete(.file(path)):
        // The whole path, or its end when the row is too narrow: the end says which file it is.
        let lead = "y deletes the entry and its file ", tail = " · any other key keeps both"
        let room = buffer.width - CellWidth.of(lead) - CellWidth.of(tail)
        let shown = CellWidth.of(path) <= room ? path : "…" + String(String(path.reversed()).prefix(max(0, room - 1)).reversed())
        buffer.put(lead + shown + tail, x: 0, y: y, role: .statusError, limit: buffer.width)
    case .confirmDelete(.entryOnly):
        buffer.put("y removes the entry from the list only (its file stays) · any other key keeps it", x: 0, y: y, role: .statusError, limit: buffer.width)
    case let .editingNote(editor):
        let label = "Note: "
        let x = buffer.put(label, x: 0, y: y, role: .fieldLabel)
        drawLine(editor, x: x, y: y, width: buffer.width - x, &buffer)
    }
}

/// A one-line editor at (x, y): its text (the tail, when longer than the width) and the cursor.
func drawLine(_ editor: TextEditor, x: Int, y: Int, width: Int, _ buffer: inout CellBuffer) {
    buffer.fill(x: x, y: y, width: width, height: 1, with: Cell(" ", .focusedField))
    let before = String(editor.characters[..<editor.cursor])
    var shown = editor.text, offset = 0
    while CellWidth.of(before) - offset > width - 1, !shown.isEmpty { offset += CellWidth.of(shown.removeFirst()) }
    buffer.put(shown, x: x, y: y, role: .focusedField, limit: width)
    buffer.cursor = (x + CellWidth.of(before) - offset, y)
}

private func shortDate(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm"
    return formatter.string(from: date)
}
