import Foundation
import SD3

/// The Recipe field: cycling it moves through none and the recipes; landing on one fills the fields it names
/// (steps, guidance, shift, T5, scheduler), puts its LoRA in the list in place of the previous recipe's, and switches
/// to its model. What it leaves out keeps its value; the fields stay editable afterwards.
func chooseRecipe(_ state: inout StudioState, by delta: Int) {
    let count = state.recipes.count + 1  // none, then each recipe
    let position = ((state.recipe.map { $0 + 1 } ?? 0) + delta) % count
    let next = (position + count) % count
    if let old = state.recipeLora {
        state.loras.removeAll { $0.path == old }
        state.recipeLora = nil
    }
    guard next > 0, let choice = state.recipes[safe: next - 1] else {
        state.recipe = nil
        state.status = Status(text: state.recipes.isEmpty ? "No recipes installed (recipes/*.toml)" : "Recipe: none; the fields keep their values",
                              isError: state.recipes.isEmpty)
        return
    }
    state.recipe = next - 1
    if let problem = choice.problem {
        state.status = Status(text: problem, isError: true)
        return
    }
    let recipe = choice.recipe
    if let model = recipe.model, model != state.model {
        guard !state.isRunning else {
            state.status = Status(text: "A generation is running: choose the recipe when it ends (Esc cancels it)", isError: true)
            state.recipe = nil
            return
        }
        state.model = model
    }
    // The recipe's layer of the settings, alone: the fields it names, marked as the recipe's.
    state.apply(GenerationSettings([GenerationSettings.Layer(.recipe, recipe.name, SettingsLayer(recipe: recipe))]), only: [.recipe])
    state.scheduler = recipe.scheduler ?? .euler
    state.record(.scheduler, .recipe, recipe.name)
    if let path = choice.loraPath {
        state.loras.removeAll { $0.path == path }
        let file = (path as NSString).lastPathComponent
        let name = file.hasSuffix(".safetensors") ? String(file.dropLast(".safetensors".count)) : file
        state.loras.append(LoraEntry(name: name, path: path, strength: recipe.loraStrength))
        state.recipeLora = path
    }
    let model = recipe.model.map { "; model \($0) loads with the next image" } ?? ""
    state.status = Status(text: "Recipe \(recipe.name): \(recipe.description ?? "")\(model)", isError: false)
}
