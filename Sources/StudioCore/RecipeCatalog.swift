import Foundation

/// Where recipe files are found, as themes are (`ThemeCatalog`): `$XDG_CONFIG_HOME/sd3-studio/recipes` (the user's,
/// first, so a user file overrides a built-in of the same name), the repository's `recipes/` (found from the
/// executable upward), then `./recipes`.
public struct RecipeCatalog: Sendable {
    public var folders: [String]

    public init(folders: [String]) { self.folders = folders }

    public static func standard(environment: [String: String],
                                executable: String = CommandLine.arguments.first ?? "") -> RecipeCatalog {
        RecipeCatalog(folders: TOMLFolders.standard("recipes", shipping: "flash-4.toml", environment: environment, executable: executable))
    }

    /// Recipe names → files, one per name (the first folder that has it), by name.
    public func files() -> [(name: String, path: String)] {
        TOMLFolders.files(in: folders).sorted { $0.name < $1.name }
    }

    /// `--recipe NAME|PATH`: a path (it has a `/` or ends in .toml) or a name in the folders.
    public func load(_ choice: String) throws -> Recipe {
        if choice.contains("/") || choice.hasSuffix(".toml") { return try Recipe.read(ConfigFile.expandingTilde(choice)) }
        guard let file = files().first(where: { $0.name == choice }) else { throw RecipeError.unknown(name: choice, known: files().map(\.name)) }
        return try Recipe.read(file.path)
    }
}
