/// The theme for the terminal's background when none is chosen (`--theme`, the config): `light` on a light
/// background, else the default (dark). The background comes from the terminal's answer to OSC 11 (xterm's
/// ctlseqs, "Dynamic Colors"), else from COLORFGBG.
public enum BackgroundTheme {
    public static let lightTheme = "light"

    /// Relative luminance (ITU-R BT.709 weights on the sRGB values) above one half.
    public static func isLight(_ c: RGB) -> Bool {
        0.2126 * Double(c.r) + 0.7152 * Double(c.g) + 0.0722 * Double(c.b) > 127.5
    }

    /// COLORFGBG, "FG;BG" or "FG;default;BG" (rxvt, Konsole and others set it): ANSI 7 or 15 as the background is
    /// light, another number dark, anything else unknown.
    public static func fromEnvironment(_ environment: [String: String]) -> Bool? {
        guard let parts = environment["COLORFGBG"]?.split(separator: ";", omittingEmptySubsequences: false), parts.count >= 2,
              let bg = Int(parts[parts.count - 1]), (0...255).contains(bg) else { return nil }
        return bg == 7 || bg == 15
    }

    /// The theme name to use when nothing was chosen, or nil for the default.
    public static func choice(background: RGB?, environment: [String: String]) -> String? {
        let light = background.map(isLight) ?? fromEnvironment(environment) ?? false
        return light ? lightTheme : nil
    }

    /// The colour in an OSC 11 reply's body, `11;rgb:RRRR/GGGG/BBBB` (1 to 4 hex digits a component, scaled to
    /// 8 bits as XParseColor does), or `rgba:` with a fourth component; nil for anything else.
    public static func parseReply(_ body: String) -> RGB? {
        guard body.hasPrefix("11;") else { return nil }
        let spec = body.dropFirst(3)
        let parts: [Substring]
        if spec.hasPrefix("rgb:") {
            parts = spec.dropFirst(4).split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
        } else if spec.hasPrefix("rgba:") {
            parts = Array(spec.dropFirst(5).split(separator: "/", omittingEmptySubsequences: false).prefix(3))
            guard spec.split(separator: "/").count == 4 else { return nil }
        } else {
            return nil
        }
        var values: [UInt8] = []
        for part in parts {
            guard (1...4).contains(part.count), let n = UInt32(part, radix: 16) else { return nil }
            let top = Double((1 << (4 * part.count)) - 1)
            values.append(UInt8((Double(n) / top * 255).rounded()))
        }
        return RGB(values[0], values[1], values[2])
    }
}
