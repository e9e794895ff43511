/// How many colours the terminal shows, and how theme and image colours become the numbers curses takes.
public enum ColourDepth: Sendable, Equatable {
    /// NO_COLOR (https://no-color.org, any non-empty value) or a terminal without colours: attributes only.
    case none
    case eight, sixteen, palette256
    /// 24-bit: terminfo `colors` ≥ 2²⁴ (xterm-direct and friends); colour numbers are 0xRRGGBB, and 0…7 stay ANSI.
    case direct

    public static func detect(colours: Int, environment: [String: String]) -> ColourDepth {
        if !(environment["NO_COLOR"] ?? "").isEmpty { return .none }
        if colours >= 1 << 24 { return .direct }
        if colours >= 256 { return .palette256 }
        if colours >= 16 { return .sixteen }
        if colours >= 8 { return .eight }
        return .none
    }
}

public enum TerminalPalette {
    /// xterm's default colours for 0…15 (xterm 256colres.h / XTerm-col.ad).
    static let ansi: [RGB] = [
        RGB(0, 0, 0), RGB(205, 0, 0), RGB(0, 205, 0), RGB(205, 205, 0), RGB(0, 0, 238), RGB(205, 0, 205), RGB(0, 205, 205), RGB(229, 229, 229),
        RGB(127, 127, 127), RGB(255, 0, 0), RGB(0, 255, 0), RGB(255, 255, 0), RGB(92, 92, 255), RGB(255, 0, 255), RGB(0, 255, 255), RGB(255, 255, 255),
    ]
    /// The 6×6×6 cube's levels (xterm 256colres.pl: 0, then 55 + 40·k).
    static let levels: [Int] = [0, 95, 135, 175, 215, 255]

    /// The colour xterm shows for palette index 0…255: the 16 ANSI colours, the cube (16…231), the grey ramp (232…255: 8 + 10·k).
    public static func rgb(index i: Int) -> RGB {
        switch i {
        case ..<16: return ansi[max(0, i)]
        case 16..<232:
            let n = i - 16
            return RGB(UInt8(levels[n / 36]), UInt8(levels[n / 6 % 6]), UInt8(levels[n % 6]))
        default:
            let v = UInt8(8 + 10 * (min(i, 255) - 232))
            return RGB(v, v, v)
        }
    }

    static func distance(_ a: RGB, _ b: RGB) -> Int {
        let (dr, dg, db) = (Int(a.r) - Int(b.r), Int(a.g) - Int(b.g), Int(a.b) - Int(b.b))
        return dr * dr + dg * dg + db * db
    }

    /// The nearest of indices 16…255 (cube or grey ramp, whichever is closer; as tmux's colour_find_rgb does).
    public static func nearest256(_ c: RGB) -> Int {
        func level(_ v: UInt8) -> Int { levels.indices.min { abs(levels[$0] - Int(v)) < abs(levels[$1] - Int(v)) }! }
        let cube = 16 + 36 * level(c.r) + 6 * level(c.g) + level(c.b)
        let average = (Int(c.r) + Int(c.g) + Int(c.b)) / 3
        let grey = 232 + min(23, max(0, (average - 3) / 10))
        return distance(rgb(index: grey), c) < distance(rgb(index: cube), c) ? grey : cube
    }

    /// The nearest of the first `count` ANSI colours (8 or 16).
    public static func nearestANSI(_ c: RGB, count: Int) -> Int {
        (0..<count).min { distance(ansi[$0], c) < distance(ansi[$1], c) }!
    }

    /// A theme colour as a curses colour number for `depth` (-1: the terminal's default), plus any attribute
    /// that stands in for what the depth lacks (grey on 8 colours is dim white).
    public static func resolve(_ colour: ThemeColour, depth: ColourDepth) -> (number: Int32, extra: ThemeAttributes) {
        switch (colour, depth) {
        case (_, .none), (.terminalDefault, _):
            return (-1, [])
        case let (.indexed(i), .direct):
            return i < 8 ? (Int32(i), []) : (packed(rgb(index: i)), [])
        case let (.indexed(i), .palette256):
            return (Int32(i), [])
        case let (.indexed(i), .sixteen):
            return (Int32(i < 16 ? i : nearestANSI(rgb(index: i), count: 16)), [])
        case let (.indexed(i), .eight):
            if i == 8 { return (7, .dim) }
            if i < 16 { return (Int32(i % 8), []) }
            return (Int32(nearestANSI(rgb(index: i), count: 8)), [])
        case let (.rgb(c), _):
            return (rgbNumber(c, depth: depth), [])
        }
    }

    /// A role's foreground and background for `depth`. When both land on the same colour (a grey hint on a
    /// light page, on 8 colours) the text would vanish: it becomes black or white, whichever the background is
    /// not, and dim.
    public static func resolve(foreground: ThemeColour, background: ThemeColour, depth: ColourDepth)
        -> (foreground: Int32, background: Int32, extra: ThemeAttributes) {
        var (fg, extra) = resolve(foreground, depth: depth)
        let (bg, _) = resolve(background, depth: depth)
        if fg == bg, fg != -1, depth != .direct {
            let shade = rgb(index: Int(bg))
            let light = Int(shade.r) + Int(shade.g) + Int(shade.b) > 384
            (fg, extra) = (light ? 0 : 7, extra.union(.dim))
        }
        return (fg, bg, extra)
    }

    /// An image or theme RGB colour as the nearest colour the depth has.
    public static func rgbNumber(_ c: RGB, depth: ColourDepth) -> Int32 {
        switch depth {
        case .direct: return packed(c)
        case .palette256: return Int32(nearest256(c))
        case .sixteen: return Int32(nearestANSI(c, count: 16))
        case .eight: return Int32(nearestANSI(c, count: 8))
        case .none: return -1
        }
    }

    /// 0xRRGGBB; the few values below 8 would be read as ANSI colours, so they become 8 (#000008, still black).
    static func packed(_ c: RGB) -> Int32 {
        max(8, Int32(c.r) << 16 | Int32(c.g) << 8 | Int32(c.b))
    }
}

extension TerminalPalette {
    /// How far (Euclidean RGB distance) an image pixel may be from the colour that chose its neighbour's palette
    /// entry and still take that entry. Generated "flat" areas wobble by a few levels; where they sit near the
    /// boundary between two entries (the cube's levels are 40 apart, the grey ramp's 10) a per-pixel nearest
    /// choice flips between the two and the area speckles. 12 is above that wobble and close to the grey ramp's
    /// step, so a gradient still changes entry about as often as the palette allows.
    static let hysteresis = 12

    /// Image cells' colours (half blocks: foreground the top pixel, background the bottom one) replaced by the
    /// colours `depth` shows, chosen with hysteresis: pixels are visited in reading order over the 2-pixels-per-cell
    /// grid, and a pixel within `hysteresis` of the colour that picked its left or upper neighbour's entry (the
    /// anchor; the closer of the two) takes that entry and anchor; any other pixel takes its own nearest entry and
    /// becomes an anchor. Equal inputs give equal outputs, a flat area is one entry, and the anchor (not the
    /// neighbour's colour) is what is compared, so a gradient cannot creep away from its entry. Direct colour and
    /// no colour leave the buffer as it is.
    public static func settle(_ buffer: inout CellBuffer, depth: ColourDepth) {
        guard depth != .direct, depth != .none, buffer.width > 0 else { return }
        let width = buffer.width
        // Per pixel of the (width × 2·height) grid: the anchor colour and the entry's colour; nil off images.
        var anchors = [RGB?](repeating: nil, count: width * buffer.height * 2)
        var chosen = [RGB](repeating: RGB(0, 0, 0), count: anchors.count)
        let limit = hysteresis * hysteresis
        func settlePixel(_ x: Int, _ py: Int, _ colour: RGB) -> RGB {
            let index = py * width + x
            var best: Int?
            for neighbour in [x > 0 ? index - 1 : nil, py > 0 ? index - width : nil].compactMap({ $0 }) {
                guard let anchor = anchors[neighbour], distance(anchor, colour) <= limit else { continue }
                if best.map({ distance(anchor, colour) < distance(anchors[$0]!, colour) }) ?? true { best = neighbour }
            }
            if let best {
                (anchors[index], chosen[index]) = (anchors[best], chosen[best])
            } else {
                (anchors[index], chosen[index]) = (colour, shown(colour, depth: depth))
            }
            return chosen[index]
        }
        for y in 0..<buffer.height {
            for x in 0..<width {
                var cell = buffer[x, y]
                guard let top = cell.foreground, let bottom = cell.background else { continue }
                cell.foreground = settlePixel(x, 2 * y, top)
                cell.background = settlePixel(x, 2 * y + 1, bottom)
                buffer[x, y] = cell
            }
        }
    }

    /// The colour the terminal shows for `c` at `depth` (its nearest entry's xterm colour).
    static func shown(_ c: RGB, depth: ColourDepth) -> RGB {
        switch depth {
        case .palette256: return rgb(index: nearest256(c))
        case .sixteen: return ansi[nearestANSI(c, count: 16)]
        case .eight: return ansi[nearestANSI(c, count: 8)]
        case .direct, .none: return c
        }
    }
}
