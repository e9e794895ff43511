import Foundation
import ImageIO

/// Where theme files are found and how `--theme NAME|PATH` picks one. Folders, first match wins:
/// `$XDG_CONFIG_HOME/sd3-studio/themes` (default ~/.config/sd3-studio/themes), then the repository's `themes/`
/// (found from the executable upward, as the demo model is), then `./themes`.
public struct ThemeCatalog: Sendable {
    public var folders: [String]

    public init(folders: [String]) { self.folders = folders }

    public static func standard(environment: [String: String],
                                executable: String = CommandLine.arguments.first ?? "") -> ThemeCatalog {
        ThemeCatalog(folders: TOMLFolders.standard("themes", shipping: "dark.toml", environment: environment, executable: executable))
    }

    /// Theme names → files, one per name (the first folder that has it), dark first, then by name.
    public func files() -> [(name: String, path: String)] {
        TOMLFolders.files(in: folders).sorted { ($0.name == "dark" ? 0 : 1, $0.name) < ($1.name == "dark" ? 0 : 1, $1.name) }
    }

    /// The theme file for `--theme`: a path (it has a `/` or ends in .toml) or a name in the folders.
    public func path(for choice: String) -> String? {
        if choice.contains("/") || choice.hasSuffix(".toml") { return choice }
        return files().first { $0.name == choice }?.path
    }

    public static func read(_ path: String) throws(TOMLFileError) -> Theme {
        return try Theme.parse(TOMLFile.text(path), path: path)
    }

    /// Every readable theme for cycling (F7), with the chosen one current. A broken or missing choice is reported
    /// and the built-in dark theme is used; broken files are left out of the cycle and reported too.
    public func load(choice: String?) -> (themes: [Theme], current: Int, errors: [String]) {
        var themes: [Theme] = [], errors: [String] = []
        var paths: [String] = []
        for file in files() {
            do throws(TOMLFileError) {
                themes.append(try Self.read(file.path))
                paths.append(file.path)
            } catch {
                errors.append(error.description)
            }
        }
        if !themes.contains(where: { $0.name == Theme.dark.name }) {
            themes.insert(Theme.dark, at: 0)
            paths.insert("", at: 0)
        }
        guard let choice else { return (themes, 0, errors) }
        guard let path = path(for: choice) else {
            let names = files().map(\.name).joined(separator: ", ")
            return (themes, 0, ["theme '\(choice)': no such theme (have: \(names.isEmpty ? "none" : names)); using dark"] + errors)
        }
        if let index = paths.firstIndex(of: path) { return (themes, index, errors) }
        do throws(TOMLFileError) {
            themes.append(try Self.read(path))
            return (themes, themes.count - 1, errors)
        } catch {
            // The chosen file is broken: its own error first, then the fallback.
            let own = errors.first { $0.hasPrefix(path + ":") } ?? error.description
            return (themes, 0, [own + "; using dark"] + errors.filter { $0 != own })
        }
    }
}
