import Foundation
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

/// Where each setting came from (Ctrl-X, SourcesPanel.swift): every field has a source from the start, each layer
/// that sets a field says so, a change made here reads "typed" or "chosen" with what it replaced, and the panel's keys.
@Suite struct SourcesPanelTests {
    /// The studio as it starts: the model's defaults and a config file over the built-in values.
    static func state() -> StudioState {
        var state = Support.state(prompt: "a red circle")
        var model = ModelDefaults()
        (model.width, model.height, model.steps) = (64, 64, 20)
        var d = ConfigFile.Defaults()
        (d.guidance, d.t5, d.strength) = (5, .int8, 0.75)
        state.configLayer = .init(.config, "/c.toml", SettingsLayer(config: d))
        state.apply(GenerationSettings([.init(.builtIn, nil, SettingsLayer.builtIn), .init(.model, "/m", SettingsLayer(model)), state.configLayer]))
        state.applyConfigExtras(d)
        return state
    }

    @Test func everyFieldHasASourceAndEachLayerNamesItsOwn() {
        let fresh = Support.state()
        for field in SourcesPanel.fields { #expect(fresh.origin(of: field) == "built-in default", "\(field)") }
        var state = Self.state()
        #expect(state.origin(of: .steps) == "model defaults" && state.origin(of: .width) == "model defaults")
        #expect(state.origin(of: .guidance) == "config file" && state.text(.guidance) == "5")
        #expect(state.origin(of: .t5) == "config file" && state.t5 == .int8, "the T5 choice came from the config")
        #expect(state.origin(of: .strength) == "config file" && state.text(.strength) == "0.75")
        #expect(state.origin(of: .seedMode) == "built-in default" && state.origin(of: .scheduler) == "built-in default")
        // Changed here: a typed number, a cycled choice; cycling back to the config's value is the config's again.
        state.set(.steps, "12")
        state.focus = .t5
        _ = reduce(&state, .right)
        #expect(state.origin(of: .steps) == "typed" && state.origin(of: .t5) == "chosen")
        #expect(SourcesPanel.detail(state, .steps) == "Steps: typed here; was 20 from model defaults ·\u{A0}/m")
        #expect(SourcesPanel.detail(state, .t5) == "T5: chosen here; was int8 from config file ·\u{A0}/c.toml")
        for _ in 1..<T5Mode.allCases.count { _ = reduce(&state, .right) }
        #expect(state.t5 == .int8 && state.origin(of: .t5) == "config file")
    }

    /// A recalled PNG's values are the PNG's, not "typed" (they were, before the recall recorded them); what the file
    /// does not say keeps its source.
    @Test func aRecallMarksWhatTheFileSets() {
        var state = Self.state()
        var parameters = RecalledParameters(source: .a1111, prompt: "a teapot")
        (parameters.steps, parameters.seed) = (30, 5)
        state.recalling = "/tmp/a.png"
        _ = reduce(&state, .recalled(parameters, from: "a.png"))
        for field in [FieldID.prompt, .negativePrompt, .steps, .seed, .seedMode] {
            #expect(state.origin(of: field) == "recalled PNG", "\(field): \(state.origin(of: field) ?? "nil")")
        }
        #expect(state.origin(of: .width) == "model defaults" && state.origin(of: .guidance) == "config file")
        #expect(SourcesPanel.detail(state, .steps) == "Steps: recalled PNG ·\u{A0}a.png")
        // Our own PNGs also carry the T5, precision and scheduler choices.
        state.recalling = "/tmp/b.png"
        _ = reduce(&state, .recalled(RecalledParameters(Support.metadata(seed: 7)), from: "b.png"))
        #expect(state.t5 == .on && state.origin(of: .t5) == "recalled PNG" && state.origin(of: .precision) == "recalled PNG")
        #expect(state.origin(of: .scheduler) == "recalled PNG")
    }

    @Test func aRecipeOwnsItsScheduler() {
        var state = Self.state()
        var recipe = Recipe(name: "flash", path: "/r/flash.toml")
        (recipe.steps, recipe.scheduler) = (4, .flash)
        state.recipes = [RecipeChoice(recipe: recipe, loraPath: nil, problem: nil)]
        state.focus = .recipe
        _ = reduce(&state, .right)
        #expect(state.scheduler == .flash && state.origin(of: .scheduler) == "recipe" && state.origin(of: .steps) == "recipe")
        #expect(state.origin(of: .recipe) == "chosen")
        #expect(SourcesPanel.detail(state, .scheduler) == "Scheduler: recipe ·\u{A0}flash")
    }

    @Test func itsKeys() {
        var state = Self.state()
        state.focus = .guidance
        _ = reduce(&state, .showSources)
        #expect(state.sourcesPanel?.selected == SourcesPanel.fields.firstIndex(of: .guidance), "it opens on the focused field")
        for _ in 0..<40 { _ = reduce(&state, .down) }
        #expect(state.sourcesPanel?.selected == SourcesPanel.fields.count - 1)
        for _ in 0..<40 { _ = reduce(&state, .up) }
        #expect(state.sourcesPanel?.selected == 0)
        // Typing edits nothing behind it; F5 still generates.
        _ = reduce(&state, .insert("x"))
        _ = reduce(&state, .backspace)
        #expect(state.text(.prompt) == "a red circle" && state.sourcesPanel != nil)
        #expect(reduce(&state, .generate).effects.contains { if case .start = $0 { true } else { false } })
        let generating = state.status
        #expect(generating.text.hasPrefix("Generating"))
        _ = reduce(&state, .cancel)
        #expect(state.sourcesPanel == nil && state.isRunning, "Esc closes the panel first, as in the other panels")
        #expect(state.status == generating, "a report since it opened stays on the status line")
        let running = state.status
        _ = reduce(&state, .showSources)
        _ = reduce(&state, .up)
        _ = reduce(&state, .newline)
        #expect(state.sourcesPanel == nil && state.focus == .steps, "Enter goes to the selected field")
        #expect(state.status == running, "its hint is not left on the status line")
        _ = reduce(&state, .showSources)
        _ = reduce(&state, .showSources)
        #expect(state.sourcesPanel == nil && state.status == running, "pressed again it closes")
        _ = reduce(&state, .showSources)
        #expect(state.sourcesPanel != nil)
        _ = reduce(&state, .cancel)
        #expect(state.sourcesPanel == nil && state.status == running)
        // Another panel in its place takes its hint off the status line too (F3 sets none of its own).
        _ = reduce(&state, .showSources)
        _ = reduce(&state, .showFavorites)
        #expect(state.browser != nil && state.status == running, "\(state.status.text)")
        _ = reduce(&state, .cancel)
        // On the size preset, it opens on the width.
        state.focus = .sizePreset
        _ = reduce(&state, .showSources)
        #expect(state.sourcesPanel?.selected == SourcesPanel.fields.firstIndex(of: .width))
    }

    /// Drawn in the place of the fields at the smallest size: every field, its value and its source on one row, the
    /// selected one's file below.
    @Test func itShowsEveryFieldWithItsSource() throws {
        var state = Self.state()
        state.set(.prompt, "a red circle\non a blue background")
        state.set(.steps, "12")
        state.focus = .steps
        _ = reduce(&state, .showSources)
        for (columns, rows) in RenderTests.sizes { try RenderTests.checkSnapshot("sources", state, columns: columns, rows: rows) }
        let lines = render(state, columns: 80, rows: 24).lines
        let left = lines.map { String($0.prefix(Layout(columns: 80, rows: 24).left.width)) }
        #expect(left[1].contains("Where the settings came from"))
        let rows = left[2...]
        for field in SourcesPanel.fields {
            let label = field == .negativePrompt ? "Negative" : field.label
            let row = try #require(rows.first { $0.hasPrefix("│ " + label + " ") }, "no row for \(label)")
            #expect(row.contains(try #require(state.origin(of: field))), "\(row)")
        }
        #expect(rows.contains { $0.hasPrefix("│ Prompt     a red circ") && $0.contains("…") }, "the prompt on one row")
        #expect(rows.contains { $0.hasPrefix("│ Steps      12") && $0.contains("typed") })
        #expect(rows.contains { $0.contains("Steps: typed here; w…model defaults ·\u{A0}/m") })
        #expect(rows.contains { $0.contains("Enter edits") })
    }

    /// `sd3 studio` as a person starts it, with flags and a config file: Ctrl-X shows each value's layer (the flags'
    /// as given, the config's, the model's size), and Enter goes to the picked field.
    @Test(.enabled(if: TmuxStudio.tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func ctrlXInTheStudioNamesTheFlagsTheConfigAndTheModel() async throws {
        let data = Support.temporaryFolder()
        try FileManager.default.createDirectory(atPath: data + "/config/sd3-studio", withIntermediateDirectories: true)
        try "[defaults]\nguidance = 4.5\nt5 = \"int8\"\n".write(toFile: data + "/config/sd3-studio/config.toml", atomically: true, encoding: .utf8)
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' --steps 3 --seed 9 --threads 1", environment: ["XDG_DATA_HOME": data, "XDG_CONFIG_HOME": data + "/config"])
        guard await studio.waitFor("F6 to explore seeds", seconds: 120) != nil else { return }
        studio.keys("C-x")
        let rows = ["Steps3command-lineflag", "Seed9command-lineflag", "Guidance4.5configfile", "T5int8configfile", "Width64modeldefaults", "Shift3modeldefaults"]
        guard let screen = await studio.waitUntil("the sources", { $0.contains("Where the settings came from") && TmuxStudio.shows(rows, $0) }) else { return }
        #expect(screen.contains("Prompt: built-in default"), "the prompt is selected, the focused field: \(screen)")
        studio.keys("Down", "Down", "Down", "Enter")
        guard await studio.waitFor(" guidance: config file ") != nil else { return }  // the Settings box's edge
        #expect(!studio.screen().contains("Where the settings came from"))
        await studio.quit()
    }

    /// Values the studio sets itself say how: a seed its seed mode drew, a grid's pick, a size preset.
    @Test func whatTheStudioSetsSaysHow() {
        var state = Self.state()
        state.seedMode = .random
        _ = reduce(&state, .generate)
        #expect(state.origin(of: .seed) == "random seed mode", "\(state.origin(of: .seed) ?? "nil")")
        #expect(SourcesPanel.detail(state, .seed) == "Seed: random seed mode")
        _ = reduce(&state, .generationStopped(error: nil))
        state.seedMode = .increment
        _ = reduce(&state, .generate)
        #expect(state.origin(of: .seed) == "increment seed mode")
        _ = reduce(&state, .generationStopped(error: nil))
        // A fixed seed stays whatever it was.
        state.seedMode = .fixed
        state.set(.seed, "5")
        _ = reduce(&state, .generate)
        #expect(state.origin(of: .seed) == "typed")
        #expect(SourcesPanel.detail(state, .seed).hasPrefix("Seed: typed here; was ") && SourcesPanel.detail(state, .seed).hasSuffix(" from increment seed mode"))
        _ = reduce(&state, .generationStopped(error: nil))
        // The grid's pick.
        _ = reduce(&state, .explore)
        for cell in 0..<state.draft.count {
            _ = reduce(&state, .engine(.finished(image: Support.image, metadata: Support.metadata(seed: 5 + UInt64(cell)), seconds: 1)))
        }
        _ = reduce(&state, .right)
        _ = reduce(&state, .newline)
        #expect(state.text(.seed) == "6" && state.origin(of: .seed) == "seed grid", "\(state.text(.seed)) \(state.origin(of: .seed) ?? "nil")")
        _ = reduce(&state, .generationStopped(error: nil))
        // A size preset.
        state.focus = .sizePreset
        _ = reduce(&state, .right)
        #expect(state.origin(of: .width) == "size preset" && state.origin(of: .height) == "size preset")
    }

    /// Another model (F8) re-resolves what came from the model's defaults and the config; what a layer above them set
    /// stays: flags, a recalled PNG, a recipe, what the studio set and what was typed.
    @Test func aModelSwitchKeepsWhatOutranksTheModel() {
        var state = StudioState(model: "/m")
        var model = ModelDefaults(), other = ModelDefaults()
        (model.width, model.height, model.steps, model.guidanceScale) = (64, 64, 20, 3)
        (other.width, other.height, other.steps, other.guidanceScale) = (1024, 1024, 28, 4.5)
        var flags = SettingsLayer()
        flags.height = 48
        state.apply(GenerationSettings([.init(.model, "/m", SettingsLayer(model)), .init(.given, "flags", flags)]))
        state.set(.steps, "9")
        state.apply(GenerationSettings([.init(.model, "/n", SettingsLayer(other)), state.configLayer]), keepingTyped: true, only: [.model, .config])
        #expect(state.text(.width) == "1024" && state.origin(of: .width) == "model defaults")
        #expect(state.text(.height) == "48" && state.origin(of: .height) == "command-line flag", "the flag's height stays")
        #expect(state.text(.steps) == "9" && state.origin(of: .steps) == "typed")
        #expect(state.text(.guidance) == "4.5" && state.origin(of: .guidance) == "model defaults")
    }

    /// F6 in a panel starts the grid and closes the panel: the grid needs the arrows and Enter.
    @Test func exploringClosesThePanel() {
        for opener in [Action.showSources, .showFavorites, .showLoras, .openRecall] {
            var state = Self.state()
            _ = reduce(&state, opener)
            _ = reduce(&state, .explore)
            #expect(state.explore != nil && state.overlay.panel == nil, "\(opener)")
            _ = reduce(&state, .right)
            #expect(state.explore?.selected == 1, "\(opener): the grid does not take the arrows")
        }
    }

    /// A recipe's model brings its defaults as F8 does; leaving the recipe (for none, or one without a model) goes back
    /// to the model before it and its defaults.
    @Test func leavingARecipeGoesBackToTheModel() {
        var state = Support.state(prompt: "a red circle")
        var tiny = ModelDefaults(), fast = ModelDefaults()
        (tiny.width, tiny.height, tiny.shift) = (64, 64, 3)
        (fast.width, fast.height, fast.shift) = (512, 512, 2)
        state.switchModelLayer(to: .init(.model, "/models/tiny-sd3", SettingsLayer(tiny)))
        var turbo = Recipe(name: "turbo", path: "/r/turbo.toml"), plain = Recipe(name: "plain", path: "/r/plain.toml")
        (turbo.model, turbo.steps) = ("/models/turbo", 4)
        plain.steps = 8
        state.recipes = [RecipeChoice(recipe: turbo, modelDefaults: fast), RecipeChoice(recipe: plain)]
        state.focus = .recipe
        _ = reduce(&state, .right)
        #expect(state.model == "/models/turbo" && state.text(.width) == "512" && state.text(.shift) == "2")
        #expect(SourcesPanel.detail(state, .shift) == "Shift: model defaults ·\u{A0}/models/turbo" && state.origin(of: .steps) == "recipe")
        _ = reduce(&state, .right)
        #expect(state.model == "/models/tiny-sd3" && state.status.text.hasSuffix("back to tiny-sd3"))
        #expect(state.text(.width) == "64" && state.text(.shift) == "3" && SourcesPanel.detail(state, .width) == "Width: model defaults ·\u{A0}/models/tiny-sd3")
        #expect(state.recipe == 1 && state.text(.steps) == "8")
        _ = reduce(&state, .left)
        _ = reduce(&state, .left)
        #expect(state.recipe == nil && state.model == "/models/tiny-sd3" && state.status.text.hasSuffix("back to tiny-sd3"), "\(state.status.text)")
        #expect(state.text(.steps) == "4", "the recipe's steps stay: 'the fields keep their values'")
        // A model chosen with F8 meanwhile is the user's: leaving the recipe keeps it.
        _ = reduce(&state, .right)
        state.beforeRecipe = nil  // as ModelPicker's choose does
        state.model = "/models/mine"
        _ = reduce(&state, .left)
        #expect(state.model == "/models/mine")
    }

    /// A detail keeps every character it can: words when they fit, a long path broken by cells, the middle cut only
    /// when the lines are too few (a long path lost its end, wrapped as a word).
    @Test func detailLines() {
        let path = "/tmp/data/sd3-studio/models/tiny-with-a-very-long-model-name-that-goes-on-and-on-forever-and-ever"
        let text = "Shift: model defaults ·\u{A0}" + path
        let roomy = SourcesPanel.lines(text, width: 40, most: 6)
        #expect(roomy.joined() == text && roomy.allSatisfy { CellWidth.of($0) <= 40 }, "\(roomy)")
        let tight = SourcesPanel.lines(text, width: 40, most: 2)
        #expect(tight.count == 2 && tight[0].hasPrefix("Shift: model defaults") && tight[1].hasSuffix("forever-and-ever"), "\(tight)")
        #expect(SourcesPanel.lines("Steps: recipe ·\u{A0}hyper-8", width: 40, most: 1) == ["Steps: recipe ·\u{A0}hyper-8"])
        #expect(SourcesPanel.lines("a few short words that wrap", width: 10, most: 4) == ["a few", "short", "words that", "wrap"])
    }

    /// Wide characters cut on cells with an ellipsis; a long detail keeps its file's end.
    @Test func cutsByCells() {
        let cut = SourcesPanel.middleCut("Prompt: config file · /home/someone/.config/sd3-studio/config.toml", to: 40)
        #expect(cut == "Prompt: config file …-studio/config.toml" && CellWidth.of(cut) == 40)
        #expect(CellWidth.of(SourcesPanel.middleCut(String(repeating: "猫", count: 40), to: 21)) <= 21)
        var state = Self.state()
        state.set(.negativePrompt, String(repeating: "猫", count: 36))
        _ = reduce(&state, .showSources)
        let row = render(state, columns: 120, rows: 40).lines.first { $0.hasPrefix("│ Negative") } ?? ""
        #expect(row.contains("猫…"), "\(row)")
    }
}
