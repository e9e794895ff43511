import ImageIO

/// The seed grid in the preview pane: √N × √N cells, each a thumbnail over its seed; the pick is bracketed.
/// Thumbnails are half blocks (ASCII with `ascii`); in pixel modes their cells stay blank and the terminal driver
/// writes each thumbnail there with the pane's protocol (`gridThumbnails`); `none` shows the labels only.
func drawGrid(_ grid: Exploration, _ graphics: GraphicsMode, _ buffer: inout CellBuffer, _ layout: Layout) {
    let box = layout.preview
    let title = "Seeds · \(grid.draftWidth)×\(grid.draftHeight), \(grid.draftSteps) steps"
    buffer.box(x: box.x, y: box.y, width: box.width, height: box.height, title: title, role: .focusedBorder)
    for (index, seed) in grid.seeds.enumerated() {
        let cell = gridCell(grid, index, layout)
        let picked = index == grid.selected
        let label = gridLabel(seed, picked: picked, width: cell.width + 1)
        let labelX = cell.x + max(0, (cell.width - CellWidth.of(label)) / 2)
        buffer.put(label, x: labelX, y: cell.y + cell.height, role: picked ? .focusedField : .fieldLabel, limit: cell.width + 1)
        if let image = gridImage(grid, index) {
            SymbolArt.draw(image, into: &buffer, area: cell, mode: graphics)
        } else {
            let text = grid.rendering == index ? "rendering…" : "·"
            buffer.put(text, x: cell.x + max(0, (cell.width - CellWidth.of(text)) / 2), y: cell.y + cell.height / 2, role: .hint, limit: cell.width)
        }
    }
}

/// The thumbnails a pixel protocol draws over the grid and the cells each goes in (above its seed label), for
/// the cells that have a draft or the running cell's preview.
public func gridThumbnails(_ grid: Exploration, _ layout: Layout) -> [(image: RGBImage, area: Rect)] {
    grid.seeds.indices.compactMap { index in gridImage(grid, index).map { ($0, gridCell(grid, index, layout)) } }
}

/// Cell `index`'s picture: its draft, or the running cell's latest preview.
private func gridImage(_ grid: Exploration, _ index: Int) -> RGBImage? {
    grid.images[index] ?? (grid.rendering == index ? grid.preview : nil)
}

/// Where cell `index`'s thumbnail goes: its share of the pane less a column of gap and the label row below it.
private func gridCell(_ grid: Exploration, _ index: Int, _ layout: Layout) -> Rect {
    let inner = layout.preview.inner
    let n = grid.side
    let (column, row) = (index % n, index / n)
    let x = inner.x + column * inner.width / n, nextX = inner.x + (column + 1) * inner.width / n
    let y = inner.y + row * inner.height / n, nextY = inner.y + (row + 1) * inner.height / n
    return Rect(x: x, y: y, width: nextX - x - 1, height: nextY - y - 1)
}

/// A cell's seed, bracketed when picked. Grid seeds are consecutive, so a seed too long for its cell keeps its
/// last digits (`…0014`), which are the ones that differ.
func gridLabel(_ seed: UInt64, picked: Bool, width: Int) -> String {
    let digits = String(seed)
    let room = width - 2
    let shown = digits.count <= room ? digits : "…" + digits.suffix(max(1, room - 1))
    return picked ? "[\(shown)]" : " \(shown) "
}
