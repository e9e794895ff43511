import CNcurses
import Foundation
import ImageIO
import StudioCore

public struct TerminalError: Error, CustomStringConvertible {
    public let description: String
}

/// The ncurses screen (docs/architecture.md: only StudioTerminal touches ncurses, only on the main actor). Opens in raw
/// mode (Ctrl-C, Ctrl-Q and Ctrl-G arrive as keys), non-blocking input, bracketed paste on; `close()` and the
/// exit and fatal-signal hooks put the terminal back.
@MainActor
final class Terminal {
    let window: UnsafeMutablePointer<WINDOW>
    private let styles: CursesStyles
    private let pixels: PixelLayer?

    static let pasteBegin: Int32 = 0x1100, pasteEnd: Int32 = 0x1101, ctrlLeft: Int32 = 0x1102, ctrlRight: Int32 = 0x1103

    init(graphics: GraphicsMode) throws(TerminalError) {
        guard isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0 else {
            throw TerminalError(description: "the studio needs a terminal (standard input and output are not one); try `sd3 generate`")
        }
        setlocale(LC_ALL, "")
        set_escdelay(25)
        let environment = ProcessInfo.processInfo.environment
        // COLORTERM=truecolor on a 256-colour TERM: the TERM's -direct terminfo, when installed, gives ncurses 24-bit colour.
        if let direct = Self.directTerminal(environment), let screen = sd3_newterm_window(direct) {
            window = screen
        } else if let screen = initscr() {
            window = screen
        } else {
            throw TerminalError(description: "ncurses could not start (TERM=\(environment["TERM"] ?? "unset"))")
        }
        pixels = graphics.isPixelProtocol ? PixelLayer(mode: graphics) : nil
        Self.installRestoreHooks()
        raw()
        noecho()
        nonl()
        keypad(window, true)
        // No insert/delete-character optimisation: it would shift text under a pixel image the terminal keeps.
        idcok(window, false)
        wtimeout(window, 0)
        var depth = ColourDepth.detect(colours: has_colors() ? Int(tigetnum("colors")) : 0, environment: environment)
        if depth != .none, start_color() == ERR { depth = .none }
        if depth != .none { use_default_colors() }
        styles = CursesStyles(depth: depth)
        // Sequences terminfo does not describe: bracketed paste (xterm ctlseqs) and xterm's Ctrl-arrows.
        define_key("\u{1B}[200~", Self.pasteBegin)
        define_key("\u{1B}[201~", Self.pasteEnd)
        define_key("\u{1B}[1;5D", Self.ctrlLeft)
        define_key("\u{1B}[1;5C", Self.ctrlRight)
        Self.writeRaw("\u{1B}[?2004h")
    }

    var size: (columns: Int, rows: Int) { (Int(getmaxx(window)), Int(getmaxy(window))) }

    /// `xterm-256color` → `xterm-direct` (and the like) when COLORTERM says truecolor or 24bit and TERM is not
    /// direct already; nil otherwise.
    nonisolated static func directTerminal(_ environment: [String: String]) -> String? {
        guard let colorterm = environment["COLORTERM"], colorterm == "truecolor" || colorterm == "24bit",
              let term = environment["TERM"], !term.hasSuffix("-direct"), environment["NO_COLOR"].map(\.isEmpty) ?? true else { return nil }
        let base = term.hasSuffix("-256color") ? String(term.dropLast(9)) : term
        return base + "-direct"
    }

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

    /// Flushes `buffer`; `images` (pixel modes only) are the pictures and the cells each goes in, written after the flush.
    func draw(_ buffer: CellBuffer, theme: Theme, forceFullRepaint: Bool = false, images: [(RGBImage, Rect)] = []) {
        styles.use(theme)
        // Half-block images at the depth's colours, flat areas one colour (TerminalPalette.settle).
        var buffer = buffer
        TerminalPalette.settle(&buffer, depth: styles.depth)
        if forceFullRepaint { clearok(window, true) }
        let erased = pixels?.prepare(window: window, images: images) ?? false
        var cell = cchar_t()
        for y in 0..<min(buffer.height, size.rows) {
            for x in 0..<min(buffer.width, size.columns) {
                let c = buffer[x, y]
                if c.continuation { continue }
                let (attributes, pair) = styles.style(c)
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
        pixels?.flushed(buffer, images: images, repainted: forceFullRepaint || erased)
    }
}
