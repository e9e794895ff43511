import CNcurses
import Foundation
import ImageIO
import StudioCore

/// The pixel image over the preview pane (docs/architecture.md, Studio: written after ncurses has flushed, at a saved
/// cursor position, re-sent after any repaint of its region). ncurses does not know the image exists, so this
/// remembers what it last sent and where, and decides after each flush whether to send it again.
@MainActor
final class PixelLayer {
    let mode: GraphicsMode
    private struct Placement: Equatable {
        var rect: Rect
        var cell: CellSize
        var image: RGBImage
    }
    private var sent: Placement?
    private var encoded: (placement: Placement, bytes: [UInt8])?
    private var previous: CellBuffer?

    init(mode: GraphicsMode) { self.mode = mode }

    /// Before ncurses refreshes: when the image moves, shrinks or goes away, its old rows are marked garbage so
    /// ncurses rewrites them (text cells erase sixel pixels); kitty images are deleted after the flush instead.
    func prepare(window: UnsafeMutablePointer<WINDOW>, image: (RGBImage, Rect)?) -> Bool {
        guard mode == .sixel, let sent else { return false }
        if let image, PixelEncoder.fit(width: image.0.width, height: image.0.height, into: image.1, cell: sent.cell) == sent.rect,
           TerminalProbe.cellSize() == sent.cell {
            return false
        }
        wredrawln(window, Int32(sent.rect.y), Int32(sent.rect.height))
        return true
    }

    /// After ncurses has flushed `buffer`: sends the image when it is new, moved, or its cells were repainted.
    func flushed(_ buffer: CellBuffer, image: (RGBImage, Rect)?, repainted: Bool) {
        defer { previous = buffer }
        guard let (picture, area) = image, area.width > 0, area.height > 0 else {
            if sent != nil, mode == .kitty { Self.write(Array(Self.kittyDelete.utf8)) }
            sent = nil
            return
        }
        let cell = TerminalProbe.cellSize()
        let rect = PixelEncoder.fit(width: picture.width, height: picture.height, into: area, cell: cell)
        let placement = Placement(rect: rect, cell: cell, image: picture)
        guard placement != sent || repainted || regionChanged(buffer, rect) else { return }
        let bytes: [UInt8]
        if let encoded, encoded.placement == placement {
            bytes = encoded.bytes
        } else {
            bytes = PixelEncoder.encode(picture, mode: mode, columns: rect.width, rows: rect.height, cell: cell)
            encoded = (placement, bytes)
        }
        // DECSC, CUP (1-based), the image, DECRC: the cursor ends where ncurses left it.
        var out = Array("\u{1B}7".utf8)
        if mode == .kitty, sent != nil { out += Array(Self.kittyDelete.utf8) }
        out += Array("\u{1B}[\(rect.y + 1);\(rect.x + 1)H".utf8)
        out += bytes
        out += Array("\u{1B}8".utf8)
        Self.write(out)
        sent = placement
    }

    /// On the way out: kitty images outlive the text screen, so they are deleted (sixel pixels go with it).
    func remove() {
        if sent != nil, mode == .kitty { Self.write(Array(Self.kittyDelete.utf8)) }
        sent = nil
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

    private static func write(_ bytes: [UInt8]) {
        fflush(nil)
        _ = TerminalProbe.writeAll(STDOUT_FILENO, bytes)
    }
}
