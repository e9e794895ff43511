import CNcurses
import Foundation
import ImageIO
import StudioCore

/// The pixel images over the screen (docs/architecture.md, Studio: written after ncurses has flushed, at a saved
/// cursor position, re-sent after any repaint of their region): the preview, or the seed grid's thumbnails, one
/// placement each. ncurses does not know the images exist, so this remembers what it last sent and where, and
/// decides after each flush what to send again.
@MainActor
final class PixelLayer {
    let mode: GraphicsMode
    struct Placement: Equatable {
        var rect: Rect
        var cell: CellSize
        var image: RGBImage
    }
    private var sent: [Placement] = []
    /// The escape sequences of the placements last sent (encoding a 1024² image takes a while; a repaint reuses them).
    private var encoded: [(placement: Placement, bytes: [UInt8])] = []
    private var previous: CellBuffer?
    /// The terminal's cell size in pixels and where the bytes go; tests give their own.
    private let cellSize: () -> CellSize
    private let write: ([UInt8]) -> Void

    init(mode: GraphicsMode, cellSize: @escaping () -> CellSize = { TerminalProbe.cellSize() },
         write: @escaping ([UInt8]) -> Void = PixelLayer.writeStandardOutput) {
        (self.mode, self.cellSize, self.write) = (mode, cellSize, write)
    }

    /// Each image fitted into its area (PixelEncoder.fit) for cells of `cell` pixels; empty areas are skipped.
    private func placements(_ images: [(RGBImage, Rect)], cell: CellSize) -> [Placement] {
        images.compactMap { picture, area in
            guard area.width > 0, area.height > 0 else { return nil }
            return Placement(rect: PixelEncoder.fit(width: picture.width, height: picture.height, into: area, cell: cell), cell: cell, image: picture)
        }
    }

    /// Before ncurses refreshes: rows of a sixel image that moves, shrinks or goes away are marked garbage so
    /// ncurses rewrites them (text cells erase sixel pixels); kitty images are deleted after the flush instead.
    /// True when rows were marked (every image is then sent again: the rewrite may cross a neighbour's rows).
    func prepare(window: UnsafeMutablePointer<WINDOW>, images: [(RGBImage, Rect)]) -> Bool {
        guard mode == .sixel, !sent.isEmpty else { return false }
        let next = placements(images, cell: cellSize())
        var erased = false
        for old in sent where !next.contains(where: { $0.rect == old.rect && $0.cell == old.cell }) {
            wredrawln(window, Int32(old.rect.y), Int32(old.rect.height))
            erased = true
        }
        return erased
    }

    /// After ncurses has flushed `buffer`: sends each image that is new, moved, or whose cells were repainted.
    /// Kitty keeps images apart from the text, so there any change deletes them all and sends them all again.
    func flushed(_ buffer: CellBuffer, images: [(RGBImage, Rect)], repainted: Bool) {
        defer { previous = buffer }
        let next = placements(images, cell: cellSize())
        guard !next.isEmpty else {
            if !sent.isEmpty, mode == .kitty { write(Array(Self.kittyDelete.utf8)) }
            sent = []
            return
        }
        let changed = next.indices.filter { i in
            repainted || !sent.indices.contains(i) || sent[i] != next[i] || regionChanged(buffer, next[i].rect)
        }
        let send = mode == .kitty ? (changed.isEmpty && sent.count == next.count ? [] : Array(next.indices)) : changed
        guard !send.isEmpty else { return }
        // DECSC; per image CUP (1-based) and its sequence; DECRC: the cursor ends where ncurses left it.
        var out = Array("\u{1B}7".utf8)
        if mode == .kitty, !sent.isEmpty { out += Array(Self.kittyDelete.utf8) }
        var kept: [(placement: Placement, bytes: [UInt8])] = []
        for (i, placement) in next.enumerated() {
            let bytes = encoded.first { $0.placement == placement }?.bytes
                ?? PixelEncoder.encode(placement.image, mode: mode, columns: placement.rect.width, rows: placement.rect.height, cell: placement.cell)
            kept.append((placement, bytes))
            guard send.contains(i) else { continue }
            out += Array("\u{1B}[\(placement.rect.y + 1);\(placement.rect.x + 1)H".utf8)
            out += bytes
        }
        out += Array("\u{1B}8".utf8)
        encoded = kept
        write(out)
        sent = next
    }

    /// On the way out: kitty images outlive the text screen, so they are deleted (sixel pixels go with it).
    func remove() {
        if !sent.isEmpty, mode == .kitty { write(Array(Self.kittyDelete.utf8)) }
        sent = []
    }

    /// Kitty: delete every placement and free the image data (`d=A`), quietly (`q=2`).
    static let kittyDelete = "\u{1B}_Ga=d,d=A,q=2\u{1B}\\"

    /// Whether any cell under the image differs from the last flushed frame (so ncurses wrote over it).
    private func regionChanged(_ buffer: CellBuffer, _ rect: Rect) -> Bool {
        guard let previous, previous.width == buffer.width, previous.height == buffer.height else { return true }
        for y in rect.y..<min(rect.y + rect.height, buffer.height) {
            for x in rect.x..<min(rect.x + rect.width, buffer.width) where previous[x, y] != buffer[x, y] { return true }
        }
        return false
    }

    nonisolated static func writeStandardOutput(_ bytes: [UInt8]) {
        fflush(nil)
        _ = TerminalProbe.writeAll(STDOUT_FILENO, bytes)
    }
}
