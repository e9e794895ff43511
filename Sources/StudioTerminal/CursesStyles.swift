import CNcurses
import StudioCore

/// A theme's roles as curses attributes and colour pairs for one colour depth. Pairs are allocated on first
/// use (`alloc_pair`, ncurses ≥ 6.1) and kept for the screen's life, so cycling themes reuses them.
@MainActor
final class CursesStyles {
    let depth: ColourDepth
    private var pairs: [Int64: Int32] = [:]
    private var themeName: String?
    private var roles: [Role: (attributes: UInt32, pair: Int32)] = [:]

    // ncurses.h: NCURSES_BITS(mask, shift) = mask << (shift + NCURSES_ATTR_SHIFT 8); the macros do not import.
    static let underline: UInt32 = 1 << 17
    static let reverse: UInt32 = 1 << 18
    static let dim: UInt32 = 1 << 20
    static let bold: UInt32 = 1 << 21
    static let italic: UInt32 = 1 << 31

    init(depth: ColourDepth) { self.depth = depth }

    static func bits(_ attributes: ThemeAttributes) -> UInt32 {
        var bits: UInt32 = 0
        if attributes.contains(.bold) { bits |= bold }
        if attributes.contains(.dim) { bits |= dim }
        if attributes.contains(.underline) { bits |= underline }
        if attributes.contains(.reverse) { bits |= reverse }
        if attributes.contains(.italic) { bits |= italic }
        return bits
    }

    /// Uses `theme` from now on (cheap when it is the one already in use).
    func use(_ theme: Theme) {
        guard theme.name != themeName || roles.isEmpty else { return }
        themeName = theme.name
        let effective = depth == .none ? theme.attributesOnly : theme
        roles = [:]
        for role in Role.allCases {
            let style = effective.style(role)
            let (foreground, background, extra) = TerminalPalette.resolve(foreground: style.foreground, background: style.background, depth: depth)
            let attributes = Self.bits(style.attributes.union(extra))
            roles[role] = (attributes, foreground == -1 && background == -1 ? 0 : pair(foreground, background))
        }
    }

    /// The attributes and pair of a cell: its role's, or for image cells their own colours at the nearest the depth has.
    func style(_ cell: Cell) -> (attributes: UInt32, pair: Int32) {
        if depth != .none, let fg = cell.foreground, let bg = cell.background {
            return (0, pair(TerminalPalette.rgbNumber(fg, depth: depth), TerminalPalette.rgbNumber(bg, depth: depth)))
        }
        return roles[cell.role] ?? (0, 0)
    }

    private func pair(_ foreground: Int32, _ background: Int32) -> Int32 {
        guard depth != .none else { return 0 }
        let key = Int64(foreground) << 32 | Int64(UInt32(bitPattern: background))
        if let pair = pairs[key] { return pair }
        let pair = alloc_pair(foreground, background)
        if pair < 0 { return 0 }
        pairs[key] = pair
        return pair
    }
}
