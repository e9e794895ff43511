import Foundation

/// The folders themes and recipes are read from, first match wins: `$XDG_CONFIG_HOME/sd3-studio/<kind>` (the user's),
/// the repository's `<kind>/` (found from the executable upward by a file it ships, as the demo model is), then
/// `./<kind>`; and the `.toml` files in them, one per name.
enum TOMLFolders {
    static func standard(_ kind: String, shipping marker: String, environment: [String: String], executable: String) -> [String] {
        var folders = [ConfigFile.folder(environment: environment) + "/" + kind]
        var folder = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = folder.appendingPathComponent(kind).path
            if FileManager.default.fileExists(atPath: candidate + "/" + marker) {
                folders.append(candidate)
                break
            }
            folder.deleteLastPathComponent()
        }
        folders.append(FileManager.default.currentDirectoryPath + "/" + kind)
        return folders
    }

    /// Names (file names without `.toml`) → files, the first folder's file for each name, in folder order.
    static func files(in folders: [String]) -> [(name: String, path: String)] {
        var seen: Set<String> = []
        var found: [(name: String, path: String)] = []
        for folder in folders {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
            for file in names {
                let name = String(file.dropLast(5))
                if seen.insert(name).inserted { found.append((name, folder + "/" + file)) }
            }
        }
        return found
    }
}
