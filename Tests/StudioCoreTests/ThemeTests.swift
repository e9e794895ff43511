import Foundation
@testable import StudioCore
import Testing

/// Theme files (themes/*.toml), their errors, and how colours map to what a terminal can show.
@Suite struct ThemeTests {
    static let folder = Support.packageRoot + "/themes"

    @Test func shippedThemesParseAndTheBuiltInsMatchTheirFiles() throws {
        let names = ThemeCatalog(folders: [Self.folder]).files().map(\.name)
        #expect(names == ["dark", "high-contrast", "light", "mono"], "\(names)")
        #expect(try ThemeCatalog.read(Self.folder + "/dark.toml") == Theme.dark)
        #expect(try ThemeCatalog.read(Self.folder + "/mono.toml") == Theme.monochrome)
        let mono = try ThemeCatalog.read(Self.folder + "/mono.toml")
        for role in Role.allCases {
            #expect(mono.style(role).foreground == .terminalDefault && mono.style(role).background == .terminalDefault, "mono \(role) has a colour")
        }
        let light = try ThemeCatalog.read(Self.folder + "/light.toml")
        #expect(light.description == "dark text on a light background")
        #expect(light.style(.focusedField) == RoleStyle(foreground: .rgb(RGB(0x1C, 0x1C, 0x1C)), background: .rgb(RGB(0xFF, 0xD7, 0x5F))))
        let contrast = try ThemeCatalog.read(Self.folder + "/high-contrast.toml")
        #expect(contrast.style(.statusError) == RoleStyle(foreground: .indexed(0), background: .indexed(9), attributes: .bold))
    }

    /// With no theme chosen, a light background (OSC 11's answer, else COLORFGBG) picks `light`, which is legible
    /// there: every role that draws text has a WCAG contrast of at least 3:1 against its background.
    @Test func aLightBackgroundPicksTheLightTheme() throws {
        #expect(BackgroundTheme.choice(background: RGB(255, 255, 255), environment: [:]) == "light")
        #expect(BackgroundTheme.choice(background: RGB(0xF5, 0xF5, 0xDC), environment: [:]) == "light")
        #expect(BackgroundTheme.choice(background: RGB(0x1E, 0x1E, 0x2E), environment: ["COLORFGBG": "0;15"]) == nil, "the terminal's answer wins")
        #expect(BackgroundTheme.choice(background: RGB(0, 0, 0), environment: [:]) == nil)
        #expect(BackgroundTheme.choice(background: nil, environment: ["COLORFGBG": "0;15"]) == "light")
        #expect(BackgroundTheme.choice(background: nil, environment: ["COLORFGBG": "0;default;7"]) == "light")
        #expect(BackgroundTheme.choice(background: nil, environment: ["COLORFGBG": "15;0"]) == nil)
        for odd in ["", "15", "x;y", "0;300", ";"] {
            #expect(BackgroundTheme.fromEnvironment(["COLORFGBG": odd]) == nil, "\(odd)")
        }
        let light = try ThemeCatalog.read(Self.folder + "/light.toml")
        func luminance(_ c: RGB) -> Double {
            func linear(_ v: UInt8) -> Double { let x = Double(v) / 255; return x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4) }
            return 0.2126 * linear(c.r) + 0.7152 * linear(c.g) + 0.0722 * linear(c.b)
        }
        func rgb(_ colour: ThemeColour, else fallback: RGB) -> RGB {
            switch colour {
            case let .rgb(c): return c
            case let .indexed(i): return TerminalPalette.rgb(index: i)
            case .terminalDefault: return fallback
            }
        }
        let page = rgb(light.style(.normal).background, else: RGB(255, 255, 255))
        for role in Role.allCases where role != .cursor {
            let style = light.style(role)
            let (fg, bg) = (luminance(rgb(style.foreground, else: RGB(0, 0, 0))), luminance(rgb(style.background, else: page)))
            let ratio = (max(fg, bg) + 0.05) / (min(fg, bg) + 0.05)
            #expect(ratio >= 3, "light \(role): contrast \(ratio)")
        }
    }

    @Test func colourSpellings() {
        #expect(ThemeColour("default") == .terminalDefault)
        #expect(ThemeColour("red") == .indexed(1) && ThemeColour("Bright-White") == .indexed(15) && ThemeColour("grey") == .indexed(8))
        #expect(ThemeColour("#ff8000") == .rgb(RGB(255, 128, 0)))
        #expect(ThemeColour("#ff80") == nil && ThemeColour("purple") == nil && ThemeColour("#gg0000") == nil)
        #expect(Theme.key(.focusedField) == "focused_field" && Theme.key(.statusError) == "status_error")
    }

    static func parseError(_ text: String) -> String {
        do {
            _ = try Theme.parse(text, path: "/t/bad.toml")
            return "parsed"
        } catch {
            return error.description
        }
    }

    @Test func brokenThemesNameTheFileAndLine() {
        #expect(Self.parseError("[title]\nfg = \"red\"\nbg = \"purple\"\n")
            == "/t/bad.toml:3: [title] bg: \"purple\" is not a colour: use default, a name such as red or bright-blue, 0…255, or #rrggbb")
        #expect(Self.parseError("[title]\nfg = 300\n").hasPrefix("/t/bad.toml:2: [title] fg: 300 is not a colour"))
        #expect(Self.parseError("[hint]\nattributes = [\"blink\"]\n").hasPrefix("/t/bad.toml:2: [hint] attributes: \"blink\" is not an attribute"))
        #expect(Self.parseError("\n[titel]\nfg = \"red\"\n").hasPrefix("/t/bad.toml:2: [titel]: unknown role; roles are normal, title,"))
        #expect(Self.parseError("[title]\ncolour = \"red\"\n") == "/t/bad.toml:2: [title] colour: unknown key; a role takes fg, bg and attributes")
        // Syntax errors come from TOMLKit with their line.
        #expect(Self.parseError("[title]\nfg = \n").hasPrefix("/t/bad.toml:2: "))
        #expect(Self.parseError("[title]\nfg = \"red\"\n") == "parsed")
    }

    @Test func aBrokenChoiceFallsBackToDarkWithItsError() throws {
        let folder = Support.temporaryFolder()
        try "[title]\nfg = \"red\"\n".write(toFile: folder + "/red.toml", atomically: true, encoding: .utf8)
        try "[title]\nfg = \"nope\"\n".write(toFile: folder + "/broken.toml", atomically: true, encoding: .utf8)
        let catalog = ThemeCatalog(folders: [folder, Self.folder])
        let good = catalog.load(choice: "red")
        #expect(good.themes[good.current].name == "red" && good.themes[good.current].style(.title).foreground == .indexed(1))
        #expect(good.errors == ["\(folder)/broken.toml:2: [title] fg: \"nope\" is not a colour: use default, a name such as red or bright-blue, 0…255, or #rrggbb"])
        #expect(good.themes.map(\.name) == ["dark", "high-contrast", "light", "mono", "red"])
        let broken = catalog.load(choice: "broken")
        #expect(broken.themes[broken.current] == Theme.dark)
        #expect(broken.errors.first == "\(folder)/broken.toml:2: [title] fg: \"nope\" is not a colour: use default, a name such as red or bright-blue, 0…255, or #rrggbb; using dark")
        let missing = catalog.load(choice: "solarized")
        #expect(missing.themes[missing.current] == Theme.dark && missing.errors.first?.hasPrefix("theme 'solarized': no such theme") == true)
        let byPath = catalog.load(choice: folder + "/red.toml")
        #expect(byPath.themes[byPath.current].name == "red")
        // No theme files at all: the built-in dark theme alone.
        let none = ThemeCatalog(folders: ["/nonexistent"]).load(choice: nil)
        #expect(none.themes == [Theme.dark] && none.errors.isEmpty)
    }

    @Test func noColorAndColourDepths() {
        #expect(ColourDepth.detect(colours: 256, environment: ["NO_COLOR": "1"]) == ColourDepth.none)
        #expect(ColourDepth.detect(colours: 256, environment: ["NO_COLOR": ""]) == .palette256, "an empty NO_COLOR does not count")
        #expect(ColourDepth.detect(colours: 1 << 24, environment: [:]) == .direct)
        #expect(ColourDepth.detect(colours: 16, environment: [:]) == .sixteen && ColourDepth.detect(colours: 8, environment: [:]) == .eight)
        #expect(ColourDepth.detect(colours: 0, environment: [:]) == ColourDepth.none)
        #expect(GraphicsMode.detect(environment: ["LANG": "C.UTF-8", "NO_COLOR": "1"]) == .ascii, "half blocks need colours")
        #expect(GraphicsMode.detect(environment: ["LANG": "C.UTF-8"]) == .symbols)
        // Attributes only: each role keeps its own and gains mono's, so the focused field stays visible.
        let plain = Theme.dark.attributesOnly
        #expect(plain.style(.focusedField) == RoleStyle(attributes: .reverse))
        #expect(plain.style(.statusError) == RoleStyle(attributes: [.bold, .underline]))
        #expect(Role.allCases.allSatisfy { plain.style($0).foreground == .terminalDefault && plain.style($0).background == .terminalDefault })
    }

    @Test func rgbMapsToTheNearest256And8Colours() {
        #expect(TerminalPalette.nearest256(RGB(255, 0, 0)) == 196)
        #expect(TerminalPalette.nearest256(RGB(0, 0, 0)) == 16)
        #expect(TerminalPalette.nearest256(RGB(255, 255, 255)) == 231)
        #expect(TerminalPalette.nearest256(RGB(0xFF, 0xD7, 0x5F)) == 221, "#ffd75f is cube colour 221 exactly")
        #expect(TerminalPalette.nearest256(RGB(128, 128, 128)) == 244, "mid grey: the ramp's 128 (244) beats the cube's 135 (102)")
        #expect(TerminalPalette.nearest256(RGB(0xF5, 0xF5, 0xF0)) == 255)
        #expect(TerminalPalette.nearest256(RGB(0x1C, 0x1C, 0x1C)) == 234)
        for index in 16...255 {
            #expect(TerminalPalette.nearest256(TerminalPalette.rgb(index: index)) == index
                    || TerminalPalette.rgb(index: TerminalPalette.nearest256(TerminalPalette.rgb(index: index))) == TerminalPalette.rgb(index: index),
                    "palette colour \(index) does not map to itself")
        }
        #expect(TerminalPalette.nearestANSI(RGB(250, 10, 10), count: 8) == 1)
        #expect(TerminalPalette.nearestANSI(RGB(250, 10, 10), count: 16) == 9)
        #expect(TerminalPalette.nearestANSI(RGB(0xFF, 0xD7, 0x5F), count: 8) == 3)
        #expect(TerminalPalette.nearestANSI(RGB(0xF5, 0xF5, 0xF0), count: 8) == 7)
        #expect(TerminalPalette.nearestANSI(RGB(0x1C, 0x1C, 0x1C), count: 8) == 0)
    }

    @Test func themeColoursResolvePerDepth() {
        let yellow = ThemeColour.rgb(RGB(0xFF, 0xD7, 0x5F))
        #expect(TerminalPalette.resolve(yellow, depth: .direct).number == 0xFFD75F)
        #expect(TerminalPalette.resolve(yellow, depth: .palette256).number == 221)
        #expect(TerminalPalette.resolve(yellow, depth: .sixteen).number == 11)
        #expect(TerminalPalette.resolve(yellow, depth: .eight).number == 3)
        #expect(TerminalPalette.resolve(yellow, depth: .none).number == -1)
        #expect(TerminalPalette.resolve(.terminalDefault, depth: .direct).number == -1)
        // Indexed colours: ANSI 0…7 stay themselves on a direct terminal; others become their RGB.
        #expect(TerminalPalette.resolve(.indexed(3), depth: .direct).number == 3)
        #expect(TerminalPalette.resolve(.indexed(196), depth: .direct).number == 0xFF0000)
        #expect(TerminalPalette.resolve(.indexed(196), depth: .eight).number == 1)
        #expect(TerminalPalette.resolve(.indexed(12), depth: .eight).number == 4)
        let grey = TerminalPalette.resolve(.indexed(8), depth: .eight)
        #expect(grey.number == 7 && grey.extra == .dim, "grey on 8 colours is dim white")
        #expect(TerminalPalette.resolve(.rgb(RGB(0, 0, 0)), depth: .direct).number == 8, "black stays out of the ANSI range")
        // light's hint, grey on its page: distinct on 256 colours; on 8 both are white, so the text turns dim black.
        let (hint, page) = (ThemeColour.rgb(RGB(0x8A, 0x8A, 0x8A)), ThemeColour.rgb(RGB(0xF5, 0xF5, 0xF0)))
        let rich = TerminalPalette.resolve(foreground: hint, background: page, depth: .palette256)
        #expect(rich.foreground == 245 && rich.background == 255 && rich.extra.isEmpty)
        let poor = TerminalPalette.resolve(foreground: hint, background: page, depth: .eight)
        #expect(poor.foreground == 0 && poor.background == 7 && poor.extra == .dim)
        let dark = TerminalPalette.resolve(foreground: .indexed(8), background: .indexed(0), depth: .eight)
        #expect(dark.foreground == 7 && dark.background == 0 && dark.extra == .dim)
    }
}
