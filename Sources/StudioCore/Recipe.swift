import Foundation
import SD3
import TOMLKit

/// A few-step recipe (`recipes/*.toml`): a model or a LoRA and the settings it was distilled for. Every key is
/// optional; what a recipe leaves out stays as the model, config file or flags say. `sd3 generate --recipe NAME`
/// and the studio's Recipe field apply it; flags given on the command line win over it.
public struct Recipe: Sendable, Equatable {
    /// The file name without `.toml`: what `--recipe` takes and a PNG records.
    public var name: String
    public var path: String
    public var description: String?
    /// A model folder, single file or Hugging Face repo id (as `--model`).
    public var model: String?
    /// A LoRA file or PEFT folder: a path (relative to the recipe's folder) or a name in the LoRA folders.
    public var lora: String?
    public var loraStrength: Double = 1
    public var steps: Int?
    public var guidance: Double?
    public var shift: Double?
    public var scheduler: SchedulerKind?
    public var t5: T5Mode?

    public init(name: String, path: String) { (self.name, self.path) = (name, path) }

    static let keys = "description, model, lora, lora_strength, steps, guidance, shift, scheduler and t5"

    /// The recipe at `path`; an unknown key, a wrong type or a value out of range names the file, line and key.
    public static func read(_ path: String) throws(TOMLFileError) -> Recipe {
        try parse(TOMLFile.text(path), path: path)
    }

    /// The recipe in `text`, with `path` for its name and messages.
    static func parse(_ text: String, path: String) throws(TOMLFileError) -> Recipe {
        let file = try TOMLFile(path: path, text: text)
        var recipe = Recipe(name: ((path as NSString).lastPathComponent as NSString).deletingPathExtension, path: path)
        let reader = ConfigFile.Reader(file: file, table: nil)
        for key in file.orderedKeys(file.root) {
            guard let value = file.root[key] else { continue }
            switch key {
            case "description": recipe.description = try reader.string(key, value)
            case "model": recipe.model = try reader.string(key, value)
            case "lora": recipe.lora = try reader.string(key, value)
            case "lora_strength": recipe.loraStrength = try reader.number(key, value, GenerationLimits.loraStrength)
            case "steps": recipe.steps = try reader.integer(key, value, 1...1000)
            case "guidance": recipe.guidance = try reader.number(key, value, GenerationLimits.guidance)
            case "shift": recipe.shift = try reader.number(key, value, GenerationLimits.shift)
            case "scheduler": recipe.scheduler = SchedulerKind(rawValue: try reader.choice(key, value, SchedulerKind.allCases.map(\.rawValue)))
            case "t5": recipe.t5 = try reader.t5(key, value)
            default: throw file.error(key, "unknown key; a recipe takes \(keys)")
            }
        }
        if recipe.model == nil && recipe.lora == nil && recipe.steps == nil {
            throw TOMLFileError("\(path): a recipe names a model, a lora or at least the steps")
        }
        return recipe
    }

    /// The recipe's LoRA as a path: a path with a `/` is taken relative to the recipe's folder, a name is looked up in
    /// `folders` (`LoraCatalog.folders`); nil when there is none, an error naming the places looked in when missing.
    public func loraPath(folders: [String]) throws(RecipeError) -> String? {
        guard let lora else { return nil }
        let expanded = ConfigFile.expandingTilde(lora)
        if expanded.contains("/") {
            let full = expanded.hasPrefix("/") ? expanded : ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(expanded)
            guard FileManager.default.fileExists(atPath: full) else { throw .missingLora(recipe: name, lora: lora, looked: [full]) }
            return full
        }
        guard let found = LoraCatalog.resolve(lora, folders: folders) else { throw .missingLora(recipe: name, lora: lora, looked: folders) }
        return found
    }
}

public enum RecipeError: Error, Equatable, CustomStringConvertible {
    case unknown(name: String, known: [String])
    case missingLora(recipe: String, lora: String, looked: [String])

    public var description: String {
        switch self {
        case let .unknown(name, known):
            return "recipe '\(name)': no such recipe (have: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        case let .missingLora(recipe, lora, looked):
            return "recipe \(recipe): LoRA '\(lora)' not found (looked in \(looked.joined(separator: ", "))); download it there or give its path"
        }
    }
}

/// A recipe as the studio offers it: read and its LoRA looked up when the studio starts (the reducer does no I/O),
/// with the problem that keeps it from being used, if any.
public struct RecipeChoice: Sendable, Equatable {
    public var recipe: Recipe
    public var loraPath: String?
    public var problem: String?
    /// The defaults of the recipe's own model, when it names one that could be read.
    public var modelDefaults: ModelDefaults?

    public init(recipe: Recipe, loraPath: String? = nil, problem: String? = nil, modelDefaults: ModelDefaults? = nil) {
        (self.recipe, self.loraPath, self.problem, self.modelDefaults) = (recipe, loraPath, problem, modelDefaults)
    }

    /// Every recipe in `catalog`, each with its LoRA found in `loraFolders` and its model's defaults read by
    /// `modelDefaults`; unreadable files are left out and reported.
    public static func load(_ catalog: RecipeCatalog, loraFolders: [String],
                            modelDefaults: (String) -> ModelDefaults? = { _ in nil }) -> (choices: [RecipeChoice], errors: [String]) {
        var choices: [RecipeChoice] = [], errors: [String] = []
        for file in catalog.files() {
            do throws(TOMLFileError) {
                let recipe = try Recipe.read(file.path)
                do throws(RecipeError) {
                    choices.append(RecipeChoice(recipe: recipe, loraPath: try recipe.loraPath(folders: loraFolders),
                                                modelDefaults: recipe.model.flatMap(modelDefaults)))
                } catch {
                    choices.append(RecipeChoice(recipe: recipe, problem: error.description))
                }
            } catch {
                errors.append(error.description)
            }
        }
        return (choices, errors)
    }
}
