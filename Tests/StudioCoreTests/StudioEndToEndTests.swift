import Foundation
import ImageIO
import ImageMetadata
@testable import StudioCore
import Testing

/// The studio as a user drives it, under tmux (send-keys / capture-pane, TmuxStudio) on the tiny fixture model:
/// generating, starring, the browsers across restarts, seed exploration, and the full seed-exploration run
/// (explore → refine → star → restart → find → recall, every field checked). Uses the sd3 binary built beside
/// this test bundle.
@Suite(.serialized) struct StudioEndToEndTests {
    static let tmux = TmuxStudio.tmux

    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func generateStarAndQuit() async throws {
        let sd3 = TmuxStudio.sd3
        #expect(FileManager.default.isExecutableFile(atPath: sd3), "no sd3 binary at \(sd3): run swift build first")
        let data = Support.temporaryFolder()
        // Typing while the engine runs: a run of 1000 steps (about 20 s in a debug build) outlasts the typing, however loaded
        // the machine, and Esc ends it: the test no longer waits for the 1000 steps to finish (minutes on a loaded machine).
        let long = TmuxStudio()
        defer { long.stop() }
        long.start("--model '\(Support.tinyModel)' -W 64 -H 64 --steps 1000 --seed 11 --threads 1", environment: ["XDG_DATA_HOME": data])
        guard await long.waitFor("Type a prompt, F5 to generate") != nil else { return }
        long.type("a red circle 水彩")
        long.keys("F5")
        guard let running = await long.waitFor("step ") else { return }
        #expect(running.contains("/1000"), "\(running)")
        long.keys("Tab")
        long.type("no blur")
        guard let typed = await long.waitFor("no blur") else { return }
        #expect(typed.contains("step ") && !typed.contains("Saved "), "the generation ended before the typing showed:\n\(typed)")
        long.keys("Escape")
        guard await long.waitFor("Cancelled") != nil else { return }
        await long.quit()
        #expect((try? FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio/outputs")) ?? [] == [], "a cancelled run saved nothing")

        // Generate, star and quit: intermediate steps show, the image is saved and starred.
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' -W 64 -H 64 --steps 8 --seed 11 --threads 1", environment: ["XDG_DATA_HOME": data])
        guard await studio.waitFor("Type a prompt, F5 to generate") != nil else { return }
        studio.type("a red circle 水彩")
        studio.keys("F5")
        guard await studio.waitFor("Saved ") != nil else { return }
        studio.keys("F2")
        guard await studio.waitFor("★ Starred #1") != nil else { return }
        await studio.quit()

        let outputs = data + "/sd3-studio/outputs"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []
        #expect(files == ["00001-11-a-red-circle-水彩.png"], "\(files)")
        guard let file = files.first else { return }
        let png = try PNGFile.read(outputs + "/" + file)
        let parameters = png.text.first { $0.key == "parameters" }?.value ?? ""
        #expect(parameters.hasPrefix("a red circle 水彩\nSteps: 8, Sampler: Euler"), "\(parameters)")
        #expect(png.image.width == 64 && png.image.height == 64)

        let favorites = run(sd3, ["favorites", "list", "--json"], environment: ["XDG_DATA_HOME": data])
        #expect(favorites.status == 0)
        let list = try JSONSerialization.jsonObject(with: Data(favorites.output.utf8)) as? [[String: Any]] ?? []
        #expect(list.count == 1, "\(favorites.output)")
        #expect(list.first?["prompt"] as? String == "a red circle 水彩")
        #expect((list.first?["parameters"] as? [String: Any])?["seed"] as? Int == 11)
    }

    /// A model folder without defaults.json opens at diffusers' default size (sample_size × vae_scale_factor: 32 × 1 for
    /// the sizes of diffusers' own pipeline tests) and F5 draws at that size.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func aModelWithoutDefaultsOpensAtItsOwnSize() async throws {
        let data = Support.temporaryFolder()
        let model = Support.packageRoot + "/Tests/SD3Tests/Fixtures/diffusers-dummy"
        #expect(!FileManager.default.fileExists(atPath: model + "/defaults.json"))
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(model)' --seed 4 --threads 1", environment: ["XDG_DATA_HOME": data])
        guard await studio.waitFor("Type a prompt, F5 to generate") != nil else { return }
        studio.type("A painting of a squirrel eating a burger")
        studio.keys("F5")
        guard await studio.waitFor("Saved ") != nil else { return }
        await studio.quit()
        let outputs = data + "/sd3-studio/outputs"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []
        #expect(files.count == 1, "\(files)")
        guard let file = files.first else { return }
        let png = try PNGFile.read(outputs + "/" + file)
        #expect(png.image.width == 32 && png.image.height == 32, "\(png.image.width)×\(png.image.height)")
    }

    /// Favorites across restarts: star an image, quit, start a new studio with other settings, find the image in
    /// the favorites browser by a word of its prompt, recall it (the fields come back), note it, then delete it
    /// from the history browser after the y/n question (the PNG goes too).
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func starRestartFindRecallNoteAndDelete() async throws {
        let data = Support.temporaryFolder()
        let studio = TmuxStudio()
        defer { studio.stop() }
        let environment = ["XDG_DATA_HOME": data]
        studio.start("--model '\(Support.tinyModel)' --threads 1 -W 16 -H 16 --steps 3 --seed 11", environment: environment)
        guard await studio.waitFor("Type a prompt, F5 to generate") != nil else { return }
        studio.type("a lighthouse zebra")
        studio.keys("Tab")
        studio.type("no fog")
        studio.keys("F5")
        guard await studio.waitFor("Saved ") != nil else { return }
        studio.keys("F2")
        guard await studio.waitFor("★ Starred #1") != nil else { return }
        await studio.quit()

        studio.start("--model '\(Support.tinyModel)' --threads 1 -W 32 -H 32 --steps 7 --seed 99", environment: environment)
        guard await studio.waitFor("Type a prompt, F5 to generate") != nil else { return }
        studio.keys("F3")
        guard await studio.waitFor("Favorites 1/1") != nil else { return }
        studio.type("ZEBRA")
        guard await studio.waitFor("Favorites 1/1 · search: ZEBRA") != nil else { return }
        studio.keys("Enter")
        guard let recalled = await studio.waitFor("Recalled #1 seed 11") else { return }
        #expect(recalled.contains("a lighthouse zebra") && recalled.contains("no fog"), "\(recalled)")
        let settings = recalled.split(separator: "\n").map { $0.replacingOccurrences(of: " ", with: "") }
        #expect(settings.contains { $0.contains("Steps3") && $0.contains("Guidance") }, "\(recalled)")
        #expect(settings.contains { $0.contains("Seed11") && $0.contains("Seedmodefixed") }, "\(recalled)")
        #expect(settings.contains { $0.contains("Width16") && $0.contains("Height16") }, "\(recalled)")
        studio.keys("F3")
        guard await studio.waitFor("Favorites 1/1") != nil else { return }
        studio.keys("C-n")
        guard await studio.waitFor("Note for #1") != nil else { return }
        studio.type("keeper")
        studio.keys("Enter")
        guard await studio.waitFor("Note saved on #1") != nil else { return }
        studio.keys("F4")
        guard await studio.waitFor("History 1/1") != nil else { return }
        studio.keys("DC")
        guard await studio.waitFor("y/n") != nil else { return }
        // The question names the file by its path (its end, when the row is narrower than the path).
        guard await studio.waitFor("outputs/00001-11-a-lighthouse-zebra.png · any other key keeps both") != nil else { return }
        studio.keys("y")
        guard await studio.waitFor("Deleted #1 and its file 00001-11-a-lighthouse-zebra.png") != nil else { return }
        await studio.quit()

        let outputs = (try? FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio/outputs")) ?? ["?"]
        #expect(outputs.isEmpty, "the PNG should be deleted: \(outputs)")
        let history = run(TmuxStudio.sd3, ["history", "list", "--json"], environment: environment)
        #expect(history.status == 0 && history.output.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]", "\(history.output)")
    }

    /// A corrupt database: the studio opens anyway, says so on its status line, keeps the damaged file aside.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func corruptDatabaseIsReportedByTheStudio() async throws {
        let data = Support.temporaryFolder()
        try FileManager.default.createDirectory(atPath: data + "/sd3-studio", withIntermediateDirectories: true)
        let garbage = Data((0..<6000).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        try garbage.write(to: URL(fileURLWithPath: data + "/sd3-studio/studio.sqlite"))
        var studio = TmuxStudio()
        studio.columns = 300
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' --threads 1", environment: ["XDG_DATA_HOME": data])
        guard let screen = await studio.waitFor("moved aside", seconds: 30) else { return }
        #expect(screen.contains("studio.sqlite was unreadable (") && screen.contains("moved aside to "), "\(screen)")
        studio.keys("F10")
        let aside = try FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio").filter { $0.hasPrefix("studio.sqlite.corrupt-") && !$0.contains("-wal") && !$0.contains("-shm") }
        #expect(aside.count == 1 && FileManager.default.contents(atPath: data + "/sd3-studio/" + (aside.first ?? "")) == garbage, "\(aside)")
    }

    /// F6 on the tiny model: 4 seeds render as a grid; Right picks the second, Enter refines it at the full
    /// settings; the one saved PNG equals `sd3 generate` with that seed.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func exploreFourSeedsAndRefine() async throws {
        let sd3 = TmuxStudio.sd3
        let data = Support.temporaryFolder()
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' -W 32 -H 32 --steps 4 --seed 21 --threads 1",
                     environment: ["XDG_DATA_HOME": data, "XDG_CONFIG_HOME": data + "/config"])
        guard await studio.waitFor("F6 to explore seeds") != nil else { return }
        studio.type("a red circle")
        studio.keys("F6")
        guard let grid = await studio.waitFor("4 seeds in ") else { return }
        #expect(grid.contains("Seeds · 32×32, 4 steps") && grid.contains("[21]") && grid.contains(" 24 "), "\(grid)")
        studio.keys("Right")
        guard await studio.waitFor("[22]") != nil else { return }
        studio.keys("Enter")
        guard await studio.waitFor("Saved ") != nil else { return }
        await studio.quit()

        let outputs = data + "/sd3-studio/outputs"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []
        #expect(files == ["00001-22-a-red-circle.png"], "only the refinement is saved: \(files)")
        guard let file = files.first else { return }
        let refined = try PNGFile.read(outputs + "/" + file).image
        let reference = data + "/generate.png"
        let generated = run(sd3, ["generate", "--model", Support.tinyModel, "-p", "a red circle", "-W", "32", "-H", "32", "--steps", "4",
                                  "--seed", "22", "--threads", "1", "-o", reference], environment: ["XDG_CONFIG_HOME": data + "/config", "XDG_DATA_HOME": data + "/generate-data"])
        #expect(generated.status == 0, "\(generated.output)")
        #expect(refined == (try PNGFile.read(reference).image), "the refinement differs from sd3 generate --seed 22")
        let history = run(sd3, ["history", "list", "--json"], environment: ["XDG_DATA_HOME": data])
        let rows = try JSONSerialization.jsonObject(with: Data(history.output.utf8)) as? [[String: Any]] ?? []
        #expect(rows.count == 1, "only the refinement is in the history, not the drafts: \(history.output)")
    }

    /// The acceptance run of favorites and exploration: set every field away from its default (a negative prompt,
    /// guidance, shift, T5 int8, a variation seed and strength), explore 4 seeds, pick the second (Right), refine
    /// it (Enter), star it (F2), quit; restart with a config whose defaults differ in every one of those fields,
    /// find the image in the favorites browser (F3) by a word of its prompt and recall it (Enter). Every field on
    /// screen is the refinement's again; F5 then makes the same pixels with the same metadata, and both equal
    /// `sd3 generate` with those settings.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func exploreRefineStarRestartFindAndRecall() async throws {
        let data = Support.temporaryFolder()
        let environment = ["XDG_DATA_HOME": data, "XDG_CONFIG_HOME": data + "/config"]
        let prompt = "a lighthouse zebra at dusk"
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' -W 32 -H 32 --steps 4 --seed 21 --threads 1", environment: environment)
        guard await studio.waitFor("F6 to explore seeds", seconds: 120) != nil else { return }
        // Tab order: prompt, negative prompt, steps, guidance, seed, seed mode, width, height, preset, shift, T5,
        // precision, init image, strength, variation seed, variation strength. Ctrl-U empties a field.
        studio.type(prompt)
        studio.keys("Tab")
        studio.type("no fog")
        studio.keys("Tab", "Tab", "C-u")
        studio.type("4.5")
        studio.keys("Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "C-u")
        studio.type("2.5")
        studio.keys("Tab", "Right", "Tab", "Tab", "Tab", "Tab", "C-u")
        studio.type("7")
        studio.keys("Tab", "C-u")
        studio.type("0.3")
        let refined = ["Steps4Guidance4.5", "Width32Height32", "Preset32×32Shift2.5", "T5int8Precisionfp32", "Initimagenone",
                       "Var.seed7Var.str.0.3"]
        guard await studio.waitUntil("the fields as typed", { TmuxStudio.shows(refined + ["Seed21Seedmodefixed"], $0) }) != nil else { return }
        studio.keys("F6")
        guard let grid = await studio.waitFor("4 seeds in ", seconds: 240) else { return }
        #expect(grid.contains("[21]") && grid.contains(" 24 "), "\(grid)")
        studio.keys("Right")
        guard await studio.waitFor("[22]") != nil else { return }
        studio.keys("Enter")
        guard await studio.waitFor("Saved ", seconds: 120) != nil else { return }
        studio.keys("F2")
        guard await studio.waitFor("★ Starred #1") != nil, await studio.quit() else { return }

        // The restart starts every one of those fields elsewhere: flags, then the config's [defaults].
        try FileManager.default.createDirectory(atPath: data + "/config/sd3-studio", withIntermediateDirectories: true)
        try """
        [defaults]
        negative_prompt = "rain"
        guidance = 9
        shift = 1.5
        seed_mode = "random"
        t5 = false
        precision = "bf16"
        variation_seed = 99
        variation_strength = 0.9
        """.write(toFile: data + "/config/sd3-studio/config.toml", atomically: true, encoding: .utf8)
        studio.start("--model '\(Support.tinyModel)' -W 16 -H 16 --steps 7 --seed 99 --threads 1", environment: environment)
        let configured = ["Steps7Guidance9", "Seed99Seedmoderandom", "Width16Height16", "Shift1.5", "T5offPrecisionbf16", "Var.seed99Var.str.0.9"]
        guard await studio.waitUntil("the config's fields", { TmuxStudio.shows(configured + ["rain"], $0) }) != nil else { return }
        studio.keys("F3")
        guard await studio.waitFor("Favorites 1/1") != nil else { return }
        studio.type("zebra")
        guard await studio.waitFor("Favorites 1/1 · search: zebra") != nil else { return }
        studio.keys("Enter")
        guard let recalled = await studio.waitFor("Recalled #1 seed 22") else { return }
        #expect(recalled.contains(prompt) && recalled.contains("no fog") && !recalled.contains("rain"), "\(recalled)")
        #expect(TmuxStudio.shows(refined + ["Seed22Seedmodefixed"], recalled), "a field was not recalled:\n\(recalled)")
        studio.keys("F5")
        guard await studio.waitFor("Saved ", seconds: 120) != nil, await studio.quit() else { return }

        // What the screen cannot show (T5 length, int8 weights, every digit): the two PNGs' metadata and pixels.
        let outputs = data + "/sd3-studio/outputs"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []).sorted()
        #expect(files.count == 2 && files.first?.hasPrefix("00001-22-") == true && files.last?.hasPrefix("00002-22-") == true, "\(files)")
        guard files.count == 2 else { return }
        let (first, again) = (try PNGFile.read(outputs + "/" + files[0]), try PNGFile.read(outputs + "/" + files[1]))
        let metadata = try #require(try MetadataReader.read(outputs + "/" + files[0]).metadata)
        var recalledMetadata = try #require(try MetadataReader.read(outputs + "/" + files[1]).metadata)
        #expect(metadata.prompt == prompt && metadata.negativePrompt == "no fog" && metadata.width == 32 && metadata.height == 32)
        #expect(metadata.steps == 4 && metadata.guidanceScale == 4.5 && metadata.seed == 22 && metadata.shift == 2.5)
        #expect(metadata.t5 && metadata.t5Weights == "int8" && metadata.precision == "fp32" && metadata.strength == nil)
        #expect(metadata.variationSeed == 7 && metadata.variationStrength == 0.3)
        recalledMetadata.seconds = metadata.seconds
        #expect(recalledMetadata == metadata, "the recalled settings made other metadata")
        let recalledDifference = ExploreSessionTests.maxDifference(again.image, first.image)
        #expect(recalledDifference == 0, "the recalled settings made another image: max pixel difference \(recalledDifference)")

        let reference = data + "/generate.png"
        let generated = run(TmuxStudio.sd3, ["generate", "--model", Support.tinyModel, "-p", prompt, "-n", "no fog", "-W", "32", "-H", "32",
                                             "--steps", "4", "-g", "4.5", "--seed", "22", "--shift", "2.5", "--t5", "int8", "--variation-seed", "7",
                                             "--variation-strength", "0.3", "--threads", "1", "-o", reference],
                            environment: ["XDG_CONFIG_HOME": data + "/no-config", "XDG_DATA_HOME": data + "/generate-data"])
        #expect(generated.status == 0, "\(generated.output)")
        let expected = try PNGFile.read(reference)
        let generateDifference = ExploreSessionTests.maxDifference(first.image, expected.image)
        #expect(generateDifference == 0, "the refinement differs from sd3 generate with its settings: max pixel difference \(generateDifference)")
        #expect(try MetadataReader.read(reference).metadata?.t5Weights == "int8")
        let favorites = run(TmuxStudio.sd3, ["favorites", "list", "--json"], environment: environment)
        let starred = try JSONSerialization.jsonObject(with: Data(favorites.output.utf8)) as? [[String: Any]] ?? []
        #expect(starred.count == 1 && starred.first?["prompt"] as? String == prompt, "\(favorites.output)")
    }

    /// Esc in the middle of a grid stops the running draft; the finished cells stay; a second Esc leaves the grid.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func cancelMidGrid() async throws {
        let data = Support.temporaryFolder()
        let studio = TmuxStudio()
        defer { studio.stop() }
        // Drafts of 40 steps, so that Esc lands while the second one runs; the waits are long for a busy machine.
        studio.start("--model '\(Support.tinyModel)' -W 32 -H 32 --steps 40 --seed 5 --threads 1 --draft-steps 40 -p 'a red circle'",
                     environment: ["XDG_DATA_HOME": data, "XDG_CONFIG_HOME": data + "/config"])
        guard await studio.waitFor("F6 to explore seeds", seconds: 150) != nil else { return }
        studio.keys("F6")
        guard await studio.waitFor("Exploring seed 6 (2 of 4)", seconds: 150) != nil else { return }
        studio.keys("Escape")
        guard let cancelled = await studio.waitFor("Cancelled: 1 of 4 seeds rendered", seconds: 150) else { return }
        #expect(cancelled.contains("Seeds · 32×32, 40 steps") && cancelled.contains("[5]"), "\(cancelled)")
        studio.keys("Escape")
        guard let left = await studio.waitFor("Left the seed grid", seconds: 150) else { return }
        #expect(left.contains("Preview") && !left.contains("Seeds ·"), "\(left)")
        studio.keys("F10")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio/outputs")) ?? []
        #expect(files.isEmpty, "drafts are not saved: \(files)")
    }

    /// A broken theme file: the studio opens on the dark theme and names the file and line; F7 still cycles.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func aBrokenThemeIsReportedAndTheStudioRuns() async throws {
        let data = Support.temporaryFolder()
        try "[title]\nfg = \"black\"\nbg = \"chartreuse\"\n".write(toFile: data + "/broken.toml", atomically: true, encoding: .utf8)
        var studio = TmuxStudio()
        studio.columns = 200
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' --theme '\(data)/broken.toml'", environment: ["XDG_DATA_HOME": data, "XDG_CONFIG_HOME": data + "/config"])
        guard await studio.waitFor("\(data)/broken.toml:3: [title] bg: \"chartreuse\" is not a colour", seconds: 20) != nil else { return }
        studio.keys("F7")
        guard await studio.waitFor("Theme: high-contrast: bright white and yellow on black (F7 for the next)", seconds: 20) != nil else { return }
        studio.keys("F10")
    }
}
