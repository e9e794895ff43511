import ImageIO

/// The seed grid in the preview pane: √N × √N cells, each a thumbnail over its seed; the pick is bracketed.
/// Thumbnails are symbol art even in pixel modes (one terminal image per cell would not fit the pixel layer's
/// single placement); `none` shows the labels only.
func drawGrid(_ grid: Exploration, _ graphics: GraphicsMode, _ buffer: inout CellBuffer, _ layout: Layout) {
    let box = layout.preview
    let title = "Seeds · \(grid.draftWidth)×\(grid.draftHeight), \(grid.draftSteps) steps"
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: title, role: .focusedBorder)
    let inner = box.inner
    let n = grid.side
    let mode: GraphicsMode = graphics == .ascii ? .ascii : graphics == .none ? .none : .symbols
    for (index, seed) in grid.seeds.enumerated() {
        let (column, row) = (index % n, index / n)
        let x = inner.x + column * inner.width / n, nextX = inner.x + (column + 1) * inner.width / n
        let y = inner.y + row * inner.height / n, nextY = inner.y + (row + 1) * inner.height / n
        let cell = Rect(x: x, y: y, width: nextX - x - 1, height: nextY - y - 1)
        let picked = index == grid.selected
        let label = gridLabel(seed, picked: picked, width: cell.width + 1)
        let labelX = cell.x + max(0, (cell.width - CellWidth.of(label)) / 2)
        buffer.put(label, x: labelX, y: cell.y + cell.height, role: picked ? .focusedField : .fieldLabel, limit: cell.width + 1)
        if let image = grid.images[index] ?? (grid.rendering == index ? grid.preview : nil) {
            SymbolArt.draw(image, into: &buffer, area: cell, mode: mode)
        } else {
            let text = grid.rendering == index ? "rendering…" : "·"
            buffer.put(text, x: cell.x + max(0, (cell.width - CellWidth.of(text)) / 2), y: cell.y + cell.height / 2, role: .hint, limit: cell.width)
        }
    }
}

/// A cell's seed, bracketed when picked. Grid seeds are consecutive, so a seed too long for its cell keeps its
/// last digits (`…0014`), which are the ones that differ.
func gridLabel(_ seed: UInt64, picked: Bool, width: Int) -> String {
    let digits = String(seed)
    let room = width - 2
    let shown = digits.count <= room ? digits : "…" + digits.suffix(max(1, room - 1))
    return picked ? "[\(shown)]" : " \(shown) "
}
