import Foundation
import SD3

/// The Recipe field: cycling it moves through none and the recipes; landing on one fills the fields it names
/// (steps, guidance, shift, T5, scheduler), puts its LoRA in the list in place of the previous recipe's, and switches
/// to its model. What it leaves out keeps its value; the fields stay editable afterwards.
func chooseRecipe(_ state: inout StudioState, by delta: Int) {
    let count = state.recipes.count + 1  // none, then each recipe
    let position = ((state.recipe.map { $0 + 1 } ?? 0) + delta) % count
    let index = (position + count) % count
    let choice = index > 0 ? state.recipes[safe: index - 1] : nil
    // Leaving a recipe that switched the model goes back to the model before it, unless the next one brings its own.
    var back = ""
    if let before = state.beforeRecipe, choice?.problem != nil || choice?.recipe.model == nil {
        guard !state.isRunning else {
            state.status = Status(text: "A generation is running: choose the recipe when it ends (Esc cancels it)", isError: true)
            return
        }
        (state.model, state.beforeRecipe) = (before.model, nil)
        if let layer = before.layer { state.switchModelLayer(to: layer) }
        back = "; back to \(state.localModelName)"
    }
    if let old = state.recipeLora {
        state.loras.removeAll { $0.path == old }
        state.recipeLora = nil
    }
    guard let choice else {
        state.recipe = nil
        state.status = Status(text: state.recipes.isEmpty ? "No recipes installed (recipes/*.toml)" : "Recipe: none; the fields keep their values\(back)",
                              isError: state.recipes.isEmpty)
        return
    }
    state.recipe = index - 1
    if let problem = choice.problem {
        state.status = Status(text: problem + back, isError: true)
        return
    }
    let recipe = choice.recipe
    if let model = recipe.model, model != state.model {
        guard !state.isRunning else {
            state.status = Status(text: "A generation is running: choose the recipe when it ends (Esc cancels it)", isError: true)
            state.recipe = nil
            return
        }
        if state.beforeRecipe == nil { state.beforeRecipe = (state.model, state.modelLayer) }
        state.model = model
        if let defaults = choice.modelDefaults { state.switchModelLayer(to: GenerationSettings.Layer(.model, model, SettingsLayer(defaults))) }
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
    state.status = Status(text: "Recipe \(recipe.name): \(recipe.description ?? "")\(model)\(back)", isError: false)
}
