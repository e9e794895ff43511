import Foundation
import ImageIO
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

/// Recipes: the built-in files, bad files, the catalog's folders, and `sd3 generate --recipe` end to end.
@Suite struct RecipeTests {
    static let builtIn = Support.packageRoot + "/recipes"
    static let fewstep = Support.packageRoot + "/Tests/SD3Tests/Fixtures/fewstep"

    static func write(_ text: String, name: String, in folder: String) throws -> String {
        let path = folder + "/" + name + ".toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The four built-ins with the settings their model cards give (recipes/*.toml name the sources).
    @Test func builtInsCarryTheirModelCardsSettings() throws {
        let catalog = RecipeCatalog(folders: [Self.builtIn])
        #expect(catalog.files().map(\.name) == ["flash-4", "hyper-8", "sd35-large-turbo", "sd35-medium-turbo"])
        let hyper = try catalog.load("hyper-8")
        #expect(hyper.lora == "Hyper-SD3-8steps-CFG-lora.safetensors" && hyper.loraStrength == 0.125)
        #expect(hyper.steps == 8 && hyper.guidance == 5 && hyper.shift == 3 && hyper.scheduler == .euler && hyper.t5 == nil)
        let flash = try catalog.load("flash-4")
        #expect(flash.lora == "flash-sd3" && flash.steps == 4 && flash.guidance == 0 && flash.scheduler == .flash && flash.t5 == .off)
        let large = try catalog.load("sd35-large-turbo")
        #expect(large.model == "stabilityai/stable-diffusion-3.5-large-turbo" && large.steps == 4 && large.guidance == 0 && large.lora == nil)
        let medium = try catalog.load("sd35-medium-turbo")
        #expect(medium.model == "tensorart/stable-diffusion-3.5-medium-turbo" && medium.steps == 8 && medium.guidance == 1.5)
        for recipe in [hyper, flash, large, medium] { #expect(recipe.description?.isEmpty == false, "\(recipe.name)") }
    }

    @Test func badFilesNameTheFileLineAndKey() throws {
        let folder = Support.temporaryFolder()
        let cases: [(String, String)] = [
            ("steps = 4\ncolour = 3\n", "bad.toml:2: colour: unknown key"),
            ("steps = \"four\"\n", "bad.toml:1: steps:"),
            ("steps = 0\n", "a whole number from 1 to 1000"),
            ("steps = 4\nguidance = 1e9\n", "bad.toml:2: guidance:"),
            ("steps = 4\nscheduler = \"ddim\"\n", "one of euler, flash"),
            ("steps = 4\nt5 = \"half\"\n", "true, false or \"int8\""),
            ("lora = \"x\"\nlora_strength = 1000\n", "lora_strength"),
            ("description = \"nothing\"\n", "names a model, a lora or at least the steps"),
            ("steps = [\n", "bad.toml:"),
        ]
        for (text, expected) in cases {
            let path = try Self.write(text, name: "bad", in: folder)
            #expect { try Recipe.read(path) } throws: { "\($0)".contains(expected) && "\($0)".hasPrefix(folder + "/bad.toml") }
        }
    }

    @Test func unknownNamesListTheKnownOnes() throws {
        let user = Support.temporaryFolder()
        _ = try Self.write("steps = 3\n", name: "hyper-8", in: user)
        let catalog = RecipeCatalog(folders: [user, Self.builtIn])
        #expect(throws: RecipeError.unknown(name: "turbo", known: ["flash-4", "hyper-8", "sd35-large-turbo", "sd35-medium-turbo"])) {
            try catalog.load("turbo")
        }
        // The user's folder comes first: its hyper-8 replaces the built-in.
        let own = try catalog.load("hyper-8")
        #expect(own.steps == 3 && own.lora == nil && own.path == user + "/hyper-8.toml")
    }

    @Test func theLoraIsFoundByNameOrRelativePath() throws {
        let folder = Support.temporaryFolder()
        let byName = try Recipe.read(try Self.write("lora = \"flash-sd3\"\nsteps = 4\n", name: "a", in: folder))
        #expect(try byName.loraPath(folders: [Self.fewstep]) == Self.fewstep + "/flash-sd3")
        #expect(throws: RecipeError.missingLora(recipe: "a", lora: "flash-sd3", looked: [folder])) { try byName.loraPath(folders: [folder]) }
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        let relative = try Recipe.read(try Self.write("lora = \"../fewstep/flash-sd3\"\n", name: "b", in: folder + "/sub"))
        #expect(throws: RecipeError.missingLora(recipe: "b", lora: "../fewstep/flash-sd3", looked: [folder + "/sub/../fewstep/flash-sd3"])) {
            try relative.loraPath(folders: [])
        }
        try FileManager.default.createSymbolicLink(atPath: folder + "/fewstep", withDestinationPath: Self.fewstep)
        #expect(try relative.loraPath(folders: []) == folder + "/sub/../fewstep/flash-sd3")
        let absolute = try Recipe.read(try Self.write("lora = \"\(Self.fewstep)/flash-sd3\"\n", name: "c", in: folder))
        #expect(try absolute.loraPath(folders: []) == Self.fewstep + "/flash-sd3")
    }

    /// `sd3 generate --recipe FILE`: the recipe's LoRA (a PEFT folder), steps, guidance, scheduler and T5 apply, flags
    /// override them, and the PNG records the recipe; an unknown recipe is one line and a non-zero exit.
    @Test func generateAppliesTheRecipe() throws {
        let data = Support.temporaryFolder(), out = Support.temporaryFolder(), folder = Support.temporaryFolder()
        let recipe = try Self.write("""
            lora = "\(Self.fewstep)/flash-sd3"
            steps = 2
            guidance = 0
            scheduler = "flash"
            t5 = false
            """, name: "tiny-flash", in: folder)
        let environment = ["XDG_DATA_HOME": data, "XDG_CONFIG_HOME": folder]
        func generate(_ extra: [String], _ name: String) throws -> (Int32, String, ImageMetadata?) {
            let made = run(TmuxStudio.sd3, ["generate", "--model", Support.tinyModel, "-p", "a red circle", "-W", "32", "-H", "32",
                                            "--seed", "42", "--threads", "1", "--no-history", "-o", out + "/\(name).png"] + extra,
                           environment: environment)
            let json = made.status == 0 ? try PNGFile.read(out + "/\(name).png").text.first { $0.key == "sd3-studio" }?.value : nil
            return (made.status, made.output, try json.map { try JSONDecoder().decode(ImageMetadata.self, from: Data($0.utf8)) })
        }
        let (status, output, metadata) = try generate(["--recipe", recipe], "a")
        #expect(status == 0, "\(output)")
        let m = try #require(metadata)
        #expect(m.recipe == "tiny-flash" && m.scheduler == "flash" && m.steps == 2 && m.guidanceScale == 0 && !m.t5)
        #expect(m.loras?.map(\.name) == ["flash-sd3"] && m.a1111Parameters.contains("Sampler: Flash") && m.a1111Parameters.contains("Recipe: tiny-flash"))
        let (status2, output2, overridden) = try generate(["--recipe", recipe, "--steps", "3", "--scheduler", "euler", "-g", "1.5"], "b")
        #expect(status2 == 0, "\(output2)")
        #expect(overridden?.steps == 3 && overridden?.scheduler == nil && overridden?.guidanceScale == 1.5 && overridden?.recipe == "tiny-flash")
        // --params-from brings the flash scheduler and the LoRA back: the same pixels.
        let again = run(TmuxStudio.sd3, ["generate", "--params-from", out + "/a.png", "--threads", "1", "--no-history", "-o", out + "/again.png"],
                        environment: environment)
        #expect(again.status == 0, "\(again.output)")
        #expect(try PNGFile.read(out + "/again.png").image.pixels == PNGFile.read(out + "/a.png").image.pixels)
        #expect(try PNGFile.read(out + "/b.png").image.pixels != PNGFile.read(out + "/a.png").image.pixels)
        let (status3, output3, _) = try generate(["--recipe", "no-such-recipe"], "c")
        #expect(status3 != 0 && output3.contains("recipe 'no-such-recipe': no such recipe (have: flash-4"), "\(output3)")
        let (status4, output4, _) = try generate(["--scheduler", "ddim"], "d")
        #expect(status4 != 0 && output4.contains("--scheduler must be euler or flash, not 'ddim'"), "\(output4)")
    }

    /// The studio's Recipe field: Right moves none → each recipe → none; a recipe fills its fields, its scheduler and
    /// its LoRA (replacing the previous recipe's), a recipe with a missing LoRA stops generation with its problem,
    /// and the request carries the scheduler and the recipe's name.
    @Test func theStudioRecipeFieldAppliesAndReplaces() throws {
        var state = Support.state(prompt: "a red circle")
        var flash = Recipe(name: "flash-4", path: "/r/flash-4.toml")
        (flash.lora, flash.steps, flash.guidance, flash.scheduler, flash.t5) = ("flash-sd3", 4, 0, .flash, .off)
        var hyper = Recipe(name: "hyper-8", path: "/r/hyper-8.toml")
        (hyper.lora, hyper.loraStrength, hyper.steps, hyper.guidance, hyper.shift) = ("h", 0.125, 8, 5, 3)
        let missing = Recipe(name: "gone", path: "/r/gone.toml")
        state.recipes = [RecipeChoice(recipe: flash, loraPath: "/l/flash-sd3"), RecipeChoice(recipe: hyper, loraPath: "/l/h.safetensors"),
                         RecipeChoice(recipe: missing, problem: "recipe gone: LoRA 'x' not found")]
        state.loras = [LoraEntry(name: "style", path: "/l/style.safetensors")]
        state.focus = .recipe
        _ = reduce(&state, .right)
        #expect(state.recipe == 0 && state.text(.steps) == "4" && state.text(.guidance) == "0" && state.scheduler == .flash && state.t5 == .off)
        #expect(state.loras.map(\.name) == ["style", "flash-sd3"] && state.loras.last?.strength == 1)
        var reaction = reduce(&state, .generate)
        guard case let .start(request)? = reaction.effects.first else { Issue.record("no start: \(state.status.text)"); return }
        #expect(request.parameters.scheduler == .flash && request.parameters.recipe == "flash-4" && request.parameters.steps == 4)
        #expect(request.loras.map(\.path) == ["/l/style.safetensors", "/l/flash-sd3"])
        state.job = .idle
        _ = reduce(&state, .right)
        #expect(state.recipe == 1 && state.text(.steps) == "8" && state.text(.shift) == "3" && state.scheduler == .euler)
        #expect(state.loras.map(\.name) == ["style", "h"] && state.loras.last?.strength == 0.125)
        _ = reduce(&state, .right)
        #expect(state.recipe == 2 && state.status.isError && state.status.text.contains("not found"))
        reaction = reduce(&state, .generate)
        #expect(reaction.effects.isEmpty && state.status.text.contains("pick another recipe or none"))
        #expect(state.loras.map(\.name) == ["style"])
        _ = reduce(&state, .right)
        #expect(state.recipe == nil && state.loras.map(\.name) == ["style"])
        _ = reduce(&state, .left)
        #expect(state.recipe == 2)
    }
}
