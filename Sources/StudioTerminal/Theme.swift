import CNcurses
import StudioCore

/// Roles → curses colours and attributes. Colour numbers are the 16 ANSI ones (-1: the terminal's default);
/// with NO_COLOR (https://no-color.org) or a monochrome terminal, attributes only.
struct Theme {
    struct Style { var foreground: Int32; var background: Int32; var attributes: UInt32 }

    // ncurses.h: NCURSES_BITS(mask, shift) = mask << (shift + NCURSES_ATTR_SHIFT 8); the macros do not import.
    static let underline: UInt32 = 1 << 17
    static let reverse: UInt32 = 1 << 18
    static let dim: UInt32 = 1 << 20
    static let bold: UInt32 = 1 << 21

    let styles: [Role: Style]

    static func standard(colours: Bool) -> Theme {
        guard colours else { return monochrome }
        let grey: Int32 = tigetnum("colors") >= 16 ? 8 : -1
        return Theme(styles: [
            .normal: Style(foreground: -1, background: -1, attributes: 0),
            .title: Style(foreground: 0, background: 6, attributes: 0),
            .fieldLabel: Style(foreground: 6, background: -1, attributes: 0),
            .field: Style(foreground: -1, background: -1, attributes: 0),
            .focusedField: Style(foreground: 0, background: 3, attributes: 0),
            .cursor: Style(foreground: -1, background: -1, attributes: reverse),
            .border: Style(foreground: grey, background: -1, attributes: grey == -1 ? dim : 0),
            .focusedBorder: Style(foreground: 3, background: -1, attributes: bold),
            .hint: Style(foreground: grey, background: -1, attributes: grey == -1 ? dim : 0),
            .progressBar: Style(foreground: 2, background: -1, attributes: 0),
            .progressText: Style(foreground: -1, background: -1, attributes: bold),
            .status: Style(foreground: -1, background: -1, attributes: 0),
            .statusError: Style(foreground: 1, background: -1, attributes: bold),
            .help: Style(foreground: -1, background: -1, attributes: 0),
            .image: Style(foreground: -1, background: -1, attributes: 0),
            .favorite: Style(foreground: 3, background: -1, attributes: bold),
            .warning: Style(foreground: 3, background: -1, attributes: 0),
        ])
    }

    static let monochrome: Theme = {
        var styles: [Role: Style] = [:]
        for role in Role.allCases { styles[role] = Style(foreground: -1, background: -1, attributes: 0) }
        styles[.title]?.attributes = reverse
        styles[.focusedField]?.attributes = reverse
        styles[.cursor]?.attributes = reverse
        styles[.focusedBorder]?.attributes = bold
        styles[.statusError]?.attributes = bold | underline
        styles[.hint]?.attributes = dim
        styles[.progressText]?.attributes = bold
        styles[.favorite]?.attributes = bold
        return Theme(styles: styles)
    }()
}
