import Foundation
import SD3
@testable import StudioCore
import Testing

/// One resolution of the settings for the CLI and the studio (built-in → model → config → recalled → recipe →
/// given), each value with where it came from.
@Suite struct GenerationSettingsTests {
    static func layer(steps: Int? = nil, guidance: Double? = nil, width: Int? = nil) -> SettingsLayer {
        var layer = SettingsLayer()
        (layer.steps, layer.guidance, layer.width) = (steps, guidance, width)
        return layer
    }

    @Test func eachValueComesFromTheHighestLayerThatHasOne() {
        // Given in scrambled order: the sources decide, not the order.
        let settings = GenerationSettings([
            .init(.given, "flags", Self.layer(steps: 9)),
            .init(.model, "/m", Self.layer(steps: 20, guidance: 3, width: 64)),
            .init(.recipe, "hyper-8", Self.layer(steps: 8, guidance: 1)),
            .init(.config, "/c.toml", Self.layer(steps: 30, guidance: 5)),
        ])
        #expect(settings.value(\.steps) == 9 && settings.source(\.steps) == .given)
        #expect(settings.value(\.guidance) == 1 && settings.source(\.guidance) == .recipe)
        #expect(settings.value(\.width) == 64 && settings.source(\.width) == .model)
        #expect(settings.value(\.maxSequenceLength) == 256 && settings.source(\.maxSequenceLength) == .builtIn)
        #expect(settings.value(\.seed) == nil && settings.value(\.prompt) == nil)
        let lines = settings.explanation()
        #expect(lines.contains("steps                9  ← given (flags)"), "\(lines)")
        #expect(lines.contains("guidance             1.0  ← recipe (hyper-8)"), "\(lines)")
        #expect(lines.contains("width                64  ← model defaults (/m)"), "\(lines)")
        #expect(lines.contains("max sequence length  256  ← built-in default"), "\(lines)")
        #expect(lines.contains("seed                 (none: a random one, printed and recorded)"), "\(lines)")
    }

    @Test func configAndRecalledLayers() throws {
        var d = ConfigFile.Defaults()
        (d.seed, d.seedMode, d.prompt, d.precision) = (5, .random, "", .bf16)
        let config = SettingsLayer(config: d)
        #expect(config.seed == nil, "a random seed mode leaves the seed to chance")
        #expect(config.prompt == nil, "an empty configured prompt is no prompt")
        #expect(config.precision == .bf16)
        var m = Support.metadata(seed: 11, prompt: "a red circle")
        let recalled = try SettingsLayer(recalled: m, file: "a.png")
        #expect(recalled.seed == 11 && recalled.prompt == "a red circle" && recalled.t5 == .on)
        m.precision = "fp8"
        #expect(throws: SettingsError("a.png records precision 'fp8', which must be fp32 or bf16")) { try SettingsLayer(recalled: m, file: "a.png") }
        m.precision = "fp32"
        m.scheduler = "dpm"
        #expect(throws: SettingsError("a.png records scheduler 'dpm', which must be euler or flash")) { try SettingsLayer(recalled: m, file: "a.png") }
    }

    /// The studio starts its fields from the same layers, says where the focused value came from, and a model
    /// switch re-resolves under the config while keeping what the user typed.
    @Test func theStudioKnowsWhereEachFieldCameFrom() {
        var state = StudioState(model: "/m")
        var model = ModelDefaults()
        (model.width, model.height, model.steps, model.guidanceScale) = (64, 64, 20, 3)
        var d = ConfigFile.Defaults()
        d.guidance = 5
        state.configLayer = .init(.config, "/c.toml", SettingsLayer(config: d))
        state.apply(GenerationSettings([.init(.model, "/m", SettingsLayer(model)), state.configLayer]))
        #expect(state.text(.steps) == "20" && state.origin(of: .steps) == "model defaults")
        #expect(state.text(.guidance) == "5" && state.origin(of: .guidance) == "config file")
        #expect(state.origin(of: .negativePrompt) == "built-in default")
        state.focus = .steps
        #expect(render(state, columns: 100, rows: 30).lines.joined().contains(" steps: model defaults "))
        state.set(.steps, "12")
        #expect(state.origin(of: .steps) == "typed")
        // Another model: its size and the config's guidance; the typed steps stay.
        var other = ModelDefaults()
        (other.width, other.height, other.steps, other.guidanceScale) = (1024, 1024, 28, 7)
        state.apply(GenerationSettings([.init(.model, "/n", SettingsLayer(other)), state.configLayer]), keepingTyped: true)
        #expect(state.text(.steps) == "12" && state.origin(of: .steps) == "typed")
        #expect(state.text(.width) == "1024" && state.text(.guidance) == "5" && state.origin(of: .guidance) == "config file")
        // A recipe fills only what it names, as the recipe's.
        var recipe = Recipe(name: "hyper-8", path: "/r/hyper-8.toml")
        (recipe.steps, recipe.guidance) = (8, 1)
        state.recipes = [RecipeChoice(recipe: recipe, loraPath: nil, problem: nil)]
        chooseRecipe(&state, by: 1)
        #expect(state.text(.steps) == "8" && state.origin(of: .steps) == "recipe" && state.origin(of: .guidance) == "recipe")
        #expect(state.text(.width) == "1024" && state.origin(of: .width) == "model defaults")
    }

    /// `sd3 generate --explain` prints the resolution and generates nothing.
    @Test func generateExplainSaysWhereEachValueCameFrom() throws {
        let data = Support.temporaryFolder(), folder = Support.temporaryFolder()
        let config = folder + "/config.toml"
        try "[defaults]\nsteps = 3\nguidance = 4.5\n".write(toFile: config, atomically: true, encoding: .utf8)
        let result = run(CommandLineTests.sd3, ["generate", "--model", Support.tinyModel, "-p", "a red circle", "--seed", "9",
                                                "--config", config, "--explain", "-o", folder + "/x.png"],
                         environment: ["XDG_DATA_HOME": data])
        #expect(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("prompt               \"a red circle\"  ← given (flags)"), "\(result.output)")
        #expect(lines.contains("steps                3  ← config file (\(config))"), "\(result.output)")
        #expect(lines.contains("guidance             4.5  ← config file (\(config))"), "\(result.output)")
        #expect(lines.contains { $0.hasPrefix("width ") && $0.hasSuffix("← model defaults (\(Support.tinyModel))") }, "\(result.output)")
        #expect(lines.contains("seed                 9  ← given (flags)"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/x.png"))
    }
}
