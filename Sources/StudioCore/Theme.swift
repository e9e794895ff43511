import Foundation
import TOMLKit

/// A theme colour as written: the terminal's default, a palette index (0–15 are the ANSI names), or 24-bit RGB.
public enum ThemeColour: Sendable, Equatable, Hashable {
    case terminalDefault
    case indexed(Int)
    case rgb(RGB)

    static let names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]

    /// `default`, a name (`red`, `bright-red`, `grey`), `0`…`255`, or `#rrggbb`.
    init?(_ text: String) {
        let name = text.lowercased()
        if name == "default" { self = .terminalDefault; return }
        if name == "grey" || name == "gray" { self = .indexed(8); return }
        if let i = Self.names.firstIndex(of: name) { self = .indexed(i); return }
        if name.hasPrefix("bright-"), let i = Self.names.firstIndex(of: String(name.dropFirst(7))) { self = .indexed(8 + i); return }
        if name.hasPrefix("#"), name.count == 7, let value = UInt32(name.dropFirst(), radix: 16) {
            self = .rgb(RGB(UInt8(value >> 16), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)))
            return
        }
        return nil
    }
}

public struct ThemeAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let bold = ThemeAttributes(rawValue: 1)
    public static let dim = ThemeAttributes(rawValue: 2)
    public static let underline = ThemeAttributes(rawValue: 4)
    public static let reverse = ThemeAttributes(rawValue: 8)
    public static let italic = ThemeAttributes(rawValue: 16)

    static let names: [(String, ThemeAttributes)] = [("bold", .bold), ("dim", .dim), ("underline", .underline),
                                                      ("reverse", .reverse), ("italic", .italic)]
}

public struct RoleStyle: Sendable, Equatable {
    public var foreground = ThemeColour.terminalDefault
    public var background = ThemeColour.terminalDefault
    public var attributes: ThemeAttributes = []
    public init(foreground: ThemeColour = .terminalDefault, background: ThemeColour = .terminalDefault, attributes: ThemeAttributes = []) {
        (self.foreground, self.background, self.attributes) = (foreground, background, attributes)
    }
}

/// Roles → colours and attributes (docs/architecture.md, Studio: roles, not colours), read from a TOML file in `themes/`:
///
///     [focused_field]
///     fg = "black"          # default, a name, bright-NAME, grey, 0…255 or #rrggbb
///     bg = "#ffd75f"
///     attributes = ["bold"] # bold, dim, underline, reverse, italic
///
/// A role the file leaves out looks like `normal`.
public struct Theme: Sendable, Equatable {
    public var name: String
    /// The file's `description = "…"`, shown when F7 switches to it.
    public var description = ""
    public var styles: [Role: RoleStyle]

    public init(name: String, description: String = "", styles: [Role: RoleStyle]) {
        (self.name, self.description, self.styles) = (name, description, styles)
    }

    public func style(_ role: Role) -> RoleStyle { styles[role] ?? styles[.normal] ?? RoleStyle() }

    /// A role's table name in a theme file: `focusedField` → `focused_field`.
    public static func key(_ role: Role) -> String {
        role.rawValue.reduce(into: "") { out, c in
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
    }

    /// Parses a theme file's text; every problem names the file and line.
    public static func parse(_ text: String, path: String) throws(TOMLFileError) -> Theme {
        let file = try TOMLFile(path: path, text: text)
        let roles = Dictionary(uniqueKeysWithValues: Role.allCases.map { (key($0), $0) })
        var styles: [Role: RoleStyle] = [:]
        var description = ""
        for name in file.orderedKeys(file.root) {
            guard let table = file.root[name]?.table else {
                if name == "description", let text = file.root[name]?.string {
                    description = text
                    continue
                }
                throw file.error(name, "expected a role table such as [\(name)] or `description = \"…\"`")
            }
            guard let role = roles[name] else {
                throw file.error("", in: name, "unknown role; roles are \(Role.allCases.map(key).joined(separator: ", "))")
            }
            styles[role] = try style(table, role: name, file: file)
        }
        return Theme(name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, description: description, styles: styles)
    }

    private static func style(_ table: TOMLTable, role: String, file: TOMLFile) throws(TOMLFileError) -> RoleStyle {
        var style = RoleStyle()
        for key in file.orderedKeys(table, in: role) {
            let value = table[key]!
            switch key {
            case "fg", "bg":
                guard let text = value.string ?? value.int.map(String.init), let colour = ThemeColour(text),
                      !(value.int.map { !(0...255).contains($0) } ?? false) else {
                    throw file.error(key, in: role, "\(value.shown) is not a colour: use default, a name such as red or bright-blue, 0…255, or #rrggbb")
                }
                if key == "fg" { style.foreground = colour } else { style.background = colour }
            case "attributes":
                guard let list = value.array else { throw file.error(key, in: role, "expected a list such as [\"bold\", \"underline\"]") }
                for item in list {
                    guard let name = item.string, let attribute = ThemeAttributes.names.first(where: { $0.0 == name })?.1 else {
                        throw file.error(key, in: role, "\(item.shown) is not an attribute: use bold, dim, underline, reverse or italic")
                    }
                    style.attributes.insert(attribute)
                }
            default:
                throw file.error(key, in: role, "unknown key; a role takes fg, bg and attributes")
            }
        }
        return style
    }

    /// The built-in default (the same as themes/dark.toml, which a test checks): used when no theme file is found
    /// or the chosen one is broken.
    public static let dark = Theme(name: "dark", description: "ANSI colours on the terminal's own background", styles: [
        .title: RoleStyle(foreground: .indexed(0), background: .indexed(6)),
        .fieldLabel: RoleStyle(foreground: .indexed(6)),
        .focusedField: RoleStyle(foreground: .indexed(0), background: .indexed(3)),
        .cursor: RoleStyle(attributes: .reverse),
        .border: RoleStyle(foreground: .indexed(8)),
        .focusedBorder: RoleStyle(foreground: .indexed(3), attributes: .bold),
        .hint: RoleStyle(foreground: .indexed(8)),
        .progressBar: RoleStyle(foreground: .indexed(2)),
        .progressText: RoleStyle(attributes: .bold),
        .statusError: RoleStyle(foreground: .indexed(1), attributes: .bold),
        .favorite: RoleStyle(foreground: .indexed(3), attributes: .bold),
        .warning: RoleStyle(foreground: .indexed(3)),
    ])

    /// What every role looks like with attributes alone (NO_COLOR, monochrome terminals): themes/mono.toml.
    public static let monochrome = Theme(name: "mono", description: "attributes only", styles: [
        .title: RoleStyle(attributes: .reverse),
        .focusedField: RoleStyle(attributes: .reverse),
        .cursor: RoleStyle(attributes: .reverse),
        .focusedBorder: RoleStyle(attributes: .bold),
        .statusError: RoleStyle(attributes: [.bold, .underline]),
        .hint: RoleStyle(attributes: .dim),
        .progressText: RoleStyle(attributes: .bold),
        .progressBar: RoleStyle(attributes: .bold),
        .favorite: RoleStyle(attributes: .bold),
        .border: RoleStyle(attributes: .dim),
    ])

    /// The theme for a terminal without colours: each role keeps its own attributes and gains the monochrome
    /// theme's, so roles that a colour told apart (the focused field, the title) stay distinct.
    public var attributesOnly: Theme {
        var styles: [Role: RoleStyle] = [:]
        for role in Role.allCases {
            styles[role] = RoleStyle(attributes: style(role).attributes.union(Self.monochrome.style(role).attributes))
        }
        return Theme(name: name, description: description, styles: styles)
    }
}
