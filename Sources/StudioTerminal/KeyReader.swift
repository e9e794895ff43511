import CNcurses
import StudioCore

/// Decodes ncurses input into keys: terminfo keys via keypad mode, our `define_key` codes for bracketed
/// paste and Ctrl-arrows, ESC-prefixed characters as Alt, control bytes as Ctrl.
@MainActor
struct KeyReader {
    let window: UnsafeMutablePointer<WINDOW>

    enum Input { case key(Key), resize, none }

    func next() -> Input {
        var code: wint_t = 0
        let result = wget_wch(window, &code)
        if result == ERR { return .none }
        let value = Int32(bitPattern: code)
        if result == KEY_CODE_YES { return special(value) }
        return character(UInt32(code))
    }

    private func special(_ code: Int32) -> Input {
        switch code {
        case KEY_RESIZE: return .resize
        case KEY_UP: return .key(.up)
        case KEY_DOWN: return .key(.down)
        case KEY_LEFT: return .key(.left)
        case KEY_RIGHT: return .key(.right)
        case KEY_HOME, KEY_FIND: return .key(.home)
        case KEY_END, KEY_SELECT: return .key(.end)
        case KEY_BACKSPACE: return .key(.backspace)
        case KEY_DC: return .key(.delete)
        case KEY_ENTER: return .key(.enter)
        case KEY_BTAB: return .key(.backTab)
        case Terminal.ctrlLeft: return .key(.ctrlLeft)
        case Terminal.ctrlRight: return .key(.ctrlRight)
        case Terminal.pasteBegin: return .key(.paste(readPaste()))
        case KEY_F0 + 1...KEY_F0 + 24: return .key(.function(Int(code - KEY_F0)))
        default: return .none
        }
    }

    private func character(_ scalar: UInt32) -> Input {
        switch scalar {
        case 9: return .key(.tab)
        case 10, 13: return .key(.enter)
        case 8, 127: return .key(.backspace)
        case 27:
            // A lone ESC is Esc; ESC then a character is Alt plus that character.
            var code: wint_t = 0
            let result = wget_wch(window, &code)
            if result == OK, let next = Unicode.Scalar(UInt32(code)), code >= 32 { return .key(.alt(Character(next))) }
            if result == KEY_CODE_YES { return special(Int32(bitPattern: code)) }
            return .key(.escape)
        case 1...26: return .key(.ctrl(Character(Unicode.Scalar(scalar + 96)!)))
        default:
            guard let s = Unicode.Scalar(scalar), scalar >= 32 else { return .none }
            return .key(.character(Character(s)))
        }
    }

    /// Bracketed paste: everything up to ESC[201~, read with a short timeout so a lost end marker cannot hang.
    private func readPaste() -> String {
        var text = String.UnicodeScalarView()
        wtimeout(window, 200)
        defer { wtimeout(window, 0) }
        while text.count < 1_000_000 {
            var code: wint_t = 0
            let result = wget_wch(window, &code)
            if result == ERR { break }
            if result == KEY_CODE_YES {
                if Int32(bitPattern: code) == Terminal.pasteEnd { break }
                continue
            }
            if let s = Unicode.Scalar(UInt32(code)) { text.append(s == "\r" ? "\n" : s) }
        }
        return String(text)
    }
}
