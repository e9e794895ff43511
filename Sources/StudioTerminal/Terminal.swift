import CNcurses
import Foundation
import ImageIO
import StudioCore

public struct TerminalError: Error, CustomStringConvertible {
    public let description: String
}

/// The ncurses screen (design.md: only StudioTerminal touches ncurses, only on the main actor). Opens in raw
/// mode (Ctrl-C, Ctrl-Q and Ctrl-G arrive as keys), non-blocking input, bracketed paste on; `close()` and the
/// exit and fatal-signal hooks put the terminal back.
@MainActor
final class Terminal {
    let window: UnsafeMutablePointer<WINDOW>
    private let theme: Theme
    private let colours: Int32
    private var pairs: [Int64: Int32] = [:]
    private let pixels: PixelLayer?

    static let pasteBegin: Int32 = 0x1100, pasteEnd: Int32 = 0x1101, ctrlLeft: Int32 = 0x1102, ctrlRight: Int32 = 0x1103

    init(graphics: GraphicsMode) throws(TerminalError) {
        guard isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0 else {
            throw TerminalError(description: "the studio needs a terminal (standard input and output are not one); try `sd3 generate`")
        }
        setlocale(LC_ALL, "")
        set_escdelay(25)
        guard let window = initscr() else { throw TerminalError(description: "ncurses could not start (TERM=\(ProcessInfo.processInfo.environment["TERM"] ?? "unset"))") }
        self.window = window
        pixels = graphics.isPixelProtocol ? PixelLayer(mode: graphics) : nil
        Self.installRestoreHooks()
        raw()
        noecho()
        nonl()
        keypad(window, true)
        // No insert/delete-character optimisation: it would shift text under a pixel image the terminal keeps.
        idcok(window, false)
        wtimeout(window, 0)
        let noColor = !(ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        if has_colors() && !noColor {
            start_color()
            use_default_colors()
            colours = max(8, tigetnum("colors"))
            theme = .standard(colours: true)
        } else {
            colours = 0
            theme = .monochrome
        }
        // Sequences terminfo does not describe: bracketed paste (xterm ctlseqs) and xterm's Ctrl-arrows.
        define_key("\u{1B}[200~", Self.pasteBegin)
        define_key("\u{1B}[201~", Self.pasteEnd)
        define_key("\u{1B}[1;5D", Self.ctrlLeft)
        define_key("\u{1B}[1;5C", Self.ctrlRight)
        Self.writeRaw("\u{1B}[?2004h")
    }

    var size: (columns: Int, rows: Int) { (Int(getmaxx(window)), Int(getmaxy(window))) }

    func close() {
        pixels?.remove()
        Self.restore()
    }

    /// Puts the terminal back: bracketed paste off, ncurses ended. Safe to call more than once.
    nonisolated static func restore() {
        writeRaw("\u{1B}[?2004l")
        endwin()
    }

    nonisolated static func writeRaw(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { write(STDOUT_FILENO, $0.baseAddress, $0.count - 1) }
    }

    /// Normal exit restores through `close`; these cover `exit()` from anywhere and fatal errors.
    private static func installRestoreHooks() {
        atexit { Terminal.restore() }
        for fatal in [SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGTRAP, SIGFPE] {
            signal(fatal) { number in
                Terminal.restore()
                signal(number, SIG_DFL)
                raise(number)
            }
        }
    }

    /// Flushes `buffer`; `image` (pixel modes only) is the picture and the cells it goes in, written after the flush.
    func draw(_ buffer: CellBuffer, forceFullRepaint: Bool = false, image: (RGBImage, Rect)? = nil) {
        if forceFullRepaint { clearok(window, true) }
        let erased = pixels?.prepare(window: window, image: image) ?? false
        var cell = cchar_t()
        for y in 0..<min(buffer.height, size.rows) {
            for x in 0..<min(buffer.width, size.columns) {
                let c = buffer[x, y]
                if c.continuation { continue }
                let (attributes, pair) = style(c)
                var text = c.character.unicodeScalars.map { wchar_t(bitPattern: $0.value) } + [0]
                var extendedPair = pair
                setcchar(&cell, &text, attr_t(attributes), Int16(truncatingIfNeeded: min(pair, 32767)), &extendedPair)
                mvwadd_wch(window, Int32(y), Int32(x), &cell)
            }
        }
        if let cursor = buffer.cursor {
            curs_set(1)
            wmove(window, Int32(cursor.y), Int32(cursor.x))
        } else {
            curs_set(0)
        }
        wrefresh(window)
        pixels?.flushed(buffer, image: image, repainted: forceFullRepaint || erased)
    }

    private func style(_ cell: Cell) -> (UInt32, Int32) {
        let style = theme.styles[cell.role] ?? Theme.Style(foreground: -1, background: -1, attributes: 0)
        guard colours > 0 else { return (style.attributes, 0) }
        if let fg = cell.foreground, let bg = cell.background {
            return (0, pair(colour(fg), colour(bg)))
        }
        if style.foreground == -1 && style.background == -1 { return (style.attributes, 0) }
        return (style.attributes, pair(style.foreground, style.background))
    }

    private func pair(_ foreground: Int32, _ background: Int32) -> Int32 {
        let key = Int64(foreground) << 32 | Int64(UInt32(bitPattern: background))
        if let pair = pairs[key] { return pair }
        let pair = alloc_pair(foreground, background)
        if pair < 0 { return 0 }
        pairs[key] = pair
        return pair
    }

    /// The nearest colour the terminal has: direct RGB on truecolour terminfo (`colors` ≥ 2²⁴), else xterm's
    /// 6×6×6 cube and grey ramp (16…255), else the 8 ANSI colours.
    private func colour(_ c: RGB) -> Int32 {
        if colours >= 1 << 24 { return Int32(c.r) << 16 | Int32(c.g) << 8 | Int32(c.b) }
        if colours >= 256 {
            let (r, g, b) = (Int32(c.r), Int32(c.g), Int32(c.b))
            let maxC = max(r, g, b), minC = min(r, g, b)
            if maxC - minC < 12 {
                let grey = (r + g + b) / 3
                if grey < 8 { return 16 }
                if grey > 238 { return 231 }
                return 232 + min(23, (grey - 8) / 10)
            }
            func level(_ v: Int32) -> Int32 { v < 48 ? 0 : v < 115 ? 1 : (v - 35) / 40 }
            return 16 + 36 * level(r) + 6 * level(g) + level(b)
        }
        let bright = (Int32(c.r) + Int32(c.g) + Int32(c.b)) > 384
        return (c.r > 127 ? 1 : 0) | (c.g > 127 ? 2 : 0) | (c.b > 127 ? 4 : 0) | (bright && colours >= 16 ? 8 : 0)
    }
}
