import Foundation

/// The backend picker in the place of the fields (the preview stays beside it):
///
///     ┌ Backends · images render on comfyui@10.0.0.5:8188 ┐
///     │   local engine (this CPU)                          │   the local model below
///     │     /models/sd3-demo                               │
///     │ ● gpu  comfyui://10.0.0.5:8188                     │   ● where images render now
///     │     queue 0 · NVIDIA RTX 4090 (22.1 of 24.0 GB free)│   or "checking…", or the server's error
///     │     model sd3.5_medium.safetensors                  │
///     │ Up/Down pick · Enter chooses · Esc closes          │
///     └────────────────────────────────────────────────────┘
func drawBackendPanel(_ state: StudioState, _ panel: BackendPanel, _ buffer: inout CellBuffer, _ box: Rect) {
    buffer.fill(x: box.x, y: box.y, width: box.width, height: box.height)
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: "Backends · images render on \(state.backendLabel)", role: .focusedBorder)
    let inner = box.inner
    var lines: [(text: String, role: Role)] = []
    var selectedLine = 0
    func row(_ index: Int, _ title: String, _ details: [(String, Role)]) {
        let selected = index == panel.selected
        if selected { selectedLine = lines.count }
        let current = (index == 0 && state.backend == nil) || state.backend == index - 1
        lines.append(((current ? " ● " : "   ") + title, selected ? .focusedField : .field))
        for (text, role) in details {
            for part in wrapped(text, width: inner.width - 5) { lines.append(("     " + part, role)) }
        }
    }
    let shares = state.localDrafts ? "also drafts grids spread over servers (Space: no)" : "Space: also draft grids spread over servers"
    row(0, "local engine (this CPU)", [(state.model ?? "no model: start with --model DIR", state.model == nil ? .statusError : .hint),
                                       (state.backends.isEmpty ? "" : shares, .hint)].filter { !$0.0.isEmpty })
    for (i, server) in state.backends.enumerated() {
        let title = server.name == server.address.name ? server.address.description : "\(server.name)  \(server.address.description)"
        let health: (String, Role)
        switch state.backendStatus[i] {
        case nil, .checking?: health = ("checking…", .hint)
        case let .reachable(queue, device)?: health = ("reachable · queue \(queue) · \(device)", .hint)
        case let .unreachable(reason)?: health = (reason, .statusError)
        }
        let model: (String, Role) = server.model.map { ("model \($0)", .hint) } ?? ("no model: set model = \"FILE\" in its [[backends]] entry", .statusError)
        row(i + 1, title, [health, model])
    }
    if state.backends.isEmpty { lines.append((" No ComfyUI servers: add [[backends]] to the config or give --backend comfyui://HOST:PORT", .hint)) }
    let footer = "Up/Down pick · Enter chooses · Esc closes"
    let listHeight = max(1, inner.height - 1)
    // The selected row and its details (up to four lines once wrapped) stay in view.
    let top = max(0, min(selectedLine + 4 - listHeight, lines.count - listHeight))
    for (index, line) in lines.dropFirst(top).prefix(listHeight).enumerated() {
        if line.role == .focusedField { buffer.fill(x: inner.x, y: inner.y + index, width: inner.width, height: 1, with: Cell(" ", .focusedField)) }
        buffer.put(line.text, x: inner.x, y: inner.y + index, role: line.role, limit: inner.width)
    }
    buffer.put(" " + footer, x: inner.x, y: inner.y + inner.height - 1, role: .hint, limit: inner.width)
}

/// Words packed into lines of at most `width` columns; a word longer than that is cut across lines.
private func wrapped(_ text: String, width: Int) -> [String] {
    guard width > 0, CellWidth.of(text) > width else { return [text] }
    var lines: [String] = [], line = ""
    for word in text.split(separator: " ", omittingEmptySubsequences: false).map(String.init) {
        let candidate = line.isEmpty ? word : line + " " + word
        if CellWidth.of(candidate) <= width {
            line = candidate
            continue
        }
        if !line.isEmpty { lines.append(line) }
        line = word
        while CellWidth.of(line) > width {
            let head = CellWidth.truncate(line, to: width)
            if head.isEmpty { break }  // a character wider than the line: shown cut by the panel's edge
            lines.append(head)
            line = String(line.dropFirst(head.count))
        }
    }
    if !line.isEmpty { lines.append(line) }
    return lines
}
