import ComfyUI
import Foundation
import SD3
@testable import StudioCore
import Testing

/// config.toml: every key read, unknown keys and bad values named with their line.
@Suite struct ConfigFileTests {
    static let example = """
    # The example in docs/studio.md ("Config").
    model = "~/models/sd3-medium"
    output_folder = "~/Pictures/sd3"
    theme = "light"
    graphics = "symbols"
    threads = 8
    taesd = "~/models/taesd3"

    [defaults]
    prompt = "a lighthouse at dusk"
    negative_prompt = "blurry"
    width = 768
    height = 512
    steps = 28
    guidance = 7
    shift = 3.0
    seed = 1234
    seed_mode = "increment"
    t5 = false
    precision = "bf16"
    max_sequence_length = 128
    strength = 0.55
    variation_seed = 42
    variation_strength = 0.2

    [explore]
    grid = 9
    steps = 6
    scale = 0.25
    """

    @Test func readsEveryKey() throws {
        let config = try ConfigFile.parse(Self.example, path: "/c/config.toml")
        #expect(config.model == "~/models/sd3-medium" && config.outputFolder == "~/Pictures/sd3" && config.theme == "light")
        #expect(config.graphics == "symbols" && config.threads == 8 && config.taesd == "~/models/taesd3")
        let d = config.defaults
        #expect(d.prompt == "a lighthouse at dusk" && d.negativePrompt == "blurry" && d.width == 768 && d.height == 512 && d.steps == 28)
        #expect(d.guidance == 7 && d.shift == 3 && d.seed == 1234 && d.seedMode == .increment && d.t5 == .off && d.precision == .bf16)
        #expect(d.maxSequenceLength == 128 && d.strength == 0.55 && d.variationSeed == 42 && d.variationStrength == 0.2)
        #expect(config.draft.count == 9 && config.draft.steps == 6 && config.draft.scale == 0.25)
        var state = StudioState(model: "/m")
        state.apply(d)
        #expect(state.text(.prompt) == "a lighthouse at dusk" && state.text(.width) == "768" && state.text(.guidance) == "7")
        #expect(state.text(.shift) == "3" && state.seedMode == .increment && state.t5 == .off && state.precision == .bf16 && state.maxSequenceLength == 128)
        #expect(state.text(.variationSeed) == "42" && state.text(.variationStrength) == "0.2")
        #expect(ConfigFile.expandingTilde("~/x").hasSuffix("/x") && !ConfigFile.expandingTilde("~/x").hasPrefix("~"))
    }

    static func error(_ text: String) -> String {
        do {
            _ = try ConfigFile.parse(text, path: "/c/config.toml")
            return "parsed"
        } catch {
            return error.description
        }
    }

    @Test func unknownKeysAndBadValuesAreNamedWithTheirLine() {
        #expect(Self.error("modle = \"/m\"\n").hasPrefix("/c/config.toml:1: modle: unknown key; the top level takes model,"))
        #expect(Self.error("[defaults]\nsteps = 28\nstesp = 3\n").hasPrefix("/c/config.toml:3: [defaults] stesp: unknown key; [defaults] takes prompt,"))
        #expect(Self.error("[defaults]\nsteps = \"many\"\n") == "/c/config.toml:2: [defaults] steps: \"many\" is not a whole number from 1 to 1000")
        #expect(Self.error("[defaults]\n  width = 0\n") == "/c/config.toml:2: [defaults] width: 0 is not a whole number from 16 to 16384")
        #expect(Self.error("[defaults]\nguidance = -1\n") == "/c/config.toml:2: [defaults] guidance: -1 is not a number from 0 to 100")
        #expect(Self.error("[defaults]\nstrength = 1.5\n") == "/c/config.toml:2: [defaults] strength: 1.5 is not a number from 0 to 1")
        #expect(Self.error("[defaults]\nseed_mode = \"sometimes\"\n") == "/c/config.toml:2: [defaults] seed_mode: \"sometimes\" is not one of fixed, random, increment")
        #expect(Self.error("[defaults]\nt5 = \"yes\"\n") == "/c/config.toml:2: [defaults] t5: \"yes\" is not true, false or \"int8\"")
        #expect(Self.error("graphics = \"vga\"\n") == "/c/config.toml:1: graphics: \"vga\" is not one of auto, sixel, kitty, symbols, ascii, none")
        #expect(Self.error("threads = 0\n") == "/c/config.toml:1: threads: 0 is not a whole number from 1 to 1024")
        #expect(Self.error("model = 3\n") == "/c/config.toml:1: model: 3 is not a string (write it in quotes)")
        #expect(Self.error("defaults = 3\n").hasPrefix("/c/config.toml:1: defaults: 3 is not a table"))
        #expect(Self.error("[explore]\ngrid = 5\n") == "/c/config.toml:2: [explore] grid: 5: the grid takes 4, 9 or 16 seeds")
        #expect(Self.error("[explore]\nscale = 2\n") == "/c/config.toml:2: [explore] scale: 2 is not a number from 0.01 to 1")
        #expect(Self.error("[explore]\nsize = 2\n") == "/c/config.toml:2: [explore] size: unknown key; [explore] takes grid, steps and scale")
        #expect(Self.error("[defaults\n").hasPrefix("/c/config.toml:1: "), "syntax errors keep TOMLKit's line")
        #expect(Self.error("") == "parsed")
    }

    /// `t5` takes what `sd3 generate --t5` takes: true (on), false (off) or "int8"; the studio's field follows.
    @Test func t5TakesTrueFalseOrInt8() throws {
        for (text, choice) in [("true", T5Mode.on), ("false", .off), ("\"int8\"", .int8)] {
            let defaults = try ConfigFile.parse("[defaults]\nt5 = \(text)\n", path: "/c/config.toml").defaults
            #expect(defaults.t5 == choice, "t5 = \(text)")
            var state = StudioState(model: "/m")
            state.apply(defaults)
            #expect(state.t5 == choice && choiceText(state, .t5) == choice.rawValue, "t5 = \(text)")
        }
        #expect(Self.error("[defaults]\nt5 = \"on\"\n") == "/c/config.toml:2: [defaults] t5: \"on\" is not true, false or \"int8\"")
        #expect(Self.error("[defaults]\nt5 = 8\n") == "/c/config.toml:2: [defaults] t5: 8 is not true, false or \"int8\"")
    }

    /// `[[backends]]`: the server's address and credentials, and the file names the studio renders with there.
    @Test func backendsTakeTheServersFileNames() throws {
        let text = """
        [[backends]]
        name = "gpu"
        url = "comfyui://10.0.0.5:8188"
        token = "secret"
        model = "sd3.5_medium.safetensors"
        clip_l = "clip_l.safetensors"
        clip_g = "clip_g.safetensors"
        t5 = "t5xxl_fp16.safetensors"
        vae = "sd3_vae.safetensors"

        [[backends]]
        url = "comfyuis://render.example.org"
        """
        let config = try ConfigFile.parse(text, path: "/c/config.toml")
        #expect(config.backends == [
            ConfigFile.Backend(name: "gpu", url: "comfyui://10.0.0.5:8188", token: "secret", model: "sd3.5_medium.safetensors",
                               clipL: "clip_l.safetensors", clipG: "clip_g.safetensors", t5: "t5xxl_fp16.safetensors", vae: "sd3_vae.safetensors"),
            ConfigFile.Backend(name: "comfyuis://render.example.org", url: "comfyuis://render.example.org"),
        ])
        let (servers, chosen) = try config.studioBackends(adding: nil)
        #expect(chosen == nil && servers.map(\.name) == ["gpu", "comfyuis://render.example.org"])
        #expect(servers[0].model == "sd3.5_medium.safetensors" && servers[0].t5 == "t5xxl_fp16.safetensors" && servers[0].label == "comfyui@10.0.0.5:8188")
        #expect(servers[0].address.headers.map(\.value) == ["Bearer secret"] && servers[1].address.port == 443 && servers[1].model == nil)
        // --backend: a configured name or its url picks that entry; a new address joins the list, without files.
        #expect(try config.studioBackends(adding: "gpu").chosen == 0)
        #expect(try config.studioBackends(adding: "comfyui://10.0.0.5:8188").chosen == 0)
        let added = try config.studioBackends(adding: "comfyui://127.0.0.1:8190,gpu")
        #expect(added.all.count == 3 && added.chosen == 2 && added.all[2].name == "127.0.0.1:8190" && added.all[2].model == nil)
        #expect(throws: RemoteError.self) { try config.studioBackends(adding: "cpu-box") }

        let empty = Self.error("[[backends]]\nurl = \"comfyui://h:1\"\nmodel = \"\"\n")
        #expect(empty.hasPrefix("/c/config.toml:3: ") && empty.contains("model: \"\" is not a file name on the server"), "\(empty)")
        #expect(Self.error("[[backends]]\nurl = \"comfyui://h:1\"\nvae = 3\n").contains("vae: 3 is not a string"))
        #expect(Self.error("[[backends]]\nurl = \"comfyui://h:1\"\nunet = \"x\"\n")
            .contains("unknown key; a [[backends]] entry takes name, url, token, header, ca_file, model, clip_l, clip_g, t5 and vae"))
        // ca_file: a CA to trust for that server, with ~ expanded, carried to the server's address.
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        let trusting = try ConfigFile.parse("[[backends]]\nurl = \"comfyuis://home.lan\"\nca_file = \"~/ca.pem\"\n", path: "/c/config.toml")
        #expect(trusting.backends[0].caFile == home + "/ca.pem")
        #expect(try trusting.studioBackends(adding: "comfyuis://home.lan").all.map(\.address.caFile) == [home + "/ca.pem"])
    }

    @Test func locationAndMissingFiles() throws {
        #expect(ConfigFile.defaultPath(environment: ["XDG_CONFIG_HOME": "/x"]) == "/x/sd3-studio/config.toml")
        #expect(ConfigFile.defaultPath(environment: ["HOME": "/home/u"]) == "/home/u/.config/sd3-studio/config.toml")
        #expect(ConfigFile.defaultPath(environment: ["XDG_CONFIG_HOME": "relative", "HOME": "/h"]) == "/h/.config/sd3-studio/config.toml")
        #expect(try ConfigFile.load(path: "/nonexistent/config.toml", required: false) == ConfigFile())
        #expect(throws: TOMLFileError("/nonexistent/config.toml: no such config file")) {
            try ConfigFile.load(path: "/nonexistent/config.toml", required: true)
        }
    }
}
