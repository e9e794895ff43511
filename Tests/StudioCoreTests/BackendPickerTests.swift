import ComfyUI
import Foundation
import ImageIO
import SD3
@testable import StudioCore
import Testing

/// The backend picker (F11): the local engine and the servers with what the session learnt of them; arrows pick,
/// Enter chooses where images render, Esc closes; F5 and F6 then build ComfyUI jobs from the fields.
@Suite struct BackendPickerTests {
    static let gpu = StudioBackend(name: "gpu", address: ServerAddress(host: "10.0.0.5", port: 8188), model: "sd3.5_medium.safetensors",
                                   clipL: "clip_l.safetensors", clipG: "clip_g.safetensors", t5: "t5xxl_fp16.safetensors", vae: "sd3_vae.safetensors")
    static let spare = StudioBackend(name: "spare", address: ServerAddress(host: "10.0.0.6", port: 8188), model: "sd3_medium_incl_clips.safetensors")
    static let bare = StudioBackend(name: "127.0.0.1:8190", address: ServerAddress(host: "127.0.0.1", port: 8190))

    static func state() -> StudioState {
        var state = RenderTests.idle()
        state.backends = [gpu, spare, bare]
        return state
    }

    /// Open with the three servers answered: one reachable GPU, one down, one still being asked.
    static func open() -> StudioState {
        var state = state()
        _ = reduce(&state, .showBackends)
        _ = reduce(&state, .backendProbed(index: 0, .reachable(queue: 2, device: "NVIDIA GeForce RTX 4090 (22.1 of 24.0 GB free)")))
        _ = reduce(&state, .backendProbed(index: 1, .unreachable("10.0.0.6:8188: cannot connect: Connection refused")))
        return state
    }

    @Test func openProbesAndShowsEachServer() {
        var state = Self.state()
        #expect(reduce(&state, .showBackends).effects == [.probeBackends])
        #expect(state.backendPanel == BackendPanel(selected: 0) && state.backendStatus == [0: .checking, 1: .checking, 2: .checking])
        let state2 = Self.open()
        let screen = render(state2, columns: 160, rows: 48).lines.joined(separator: "\n")
        #expect(screen.contains("● local engine (this CPU)") && screen.contains("gpu  comfyui://10.0.0.5:8188"))
        #expect(screen.contains("reachable · queue 2 · NVIDIA GeForce RTX 4090 (22.1 of 24.0 GB free)"))
        #expect(screen.contains("Connection refused") && screen.contains("checking…") && screen.contains("no model: set model"))
        #expect(screen.contains("SD3 Studio · tiny-sd3 · local"))
        // Without servers the header stays as it was, and the panel says how to add one.
        var alone = RenderTests.idle()
        #expect(reduce(&alone, .showBackends).effects.isEmpty && alone.backendPanel != nil)
        #expect(render(alone, columns: 100, rows: 30).lines.joined(separator: "\n").contains("No ComfyUI servers"))
        #expect(!render(RenderTests.idle(), columns: 100, rows: 30).lines[0].contains("local"))
    }

    @Test func moveChooseAndEscape() {
        var state = Self.open()
        _ = reduce(&state, .up)
        #expect(state.backendPanel?.selected == 0)
        for _ in 0..<5 { _ = reduce(&state, .down) }
        #expect(state.backendPanel?.selected == 3, "stops at the last server")
        #expect(reduce(&state, .insert("x")).effects.isEmpty && state.text(.prompt) == RenderTests.idle().text(.prompt), "typing edits nothing")
        _ = reduce(&state, .up)
        _ = reduce(&state, .up)
        _ = reduce(&state, .newline)
        #expect(state.backendPanel == nil && state.backend == 0 && state.backendLabel == "comfyui@10.0.0.5:8188")
        #expect(state.status.text == "Images render on comfyui@10.0.0.5:8188 with sd3.5_medium.safetensors" && !state.status.isError)
        #expect(render(state, columns: 160, rows: 48).lines[0].contains("SD3 Studio · sd3.5_medium.safetensors · comfyui@10.0.0.5:8188"))
        #expect(render(state, columns: 80, rows: 24).lines[0].contains("comfyui@10.0.0.5:8188"), "the backend fits at 80 columns")
        // Reopened, the chosen server is selected; a server that did not answer is chosen with a warning.
        _ = reduce(&state, .showBackends)
        #expect(state.backendPanel?.selected == 1)
        _ = reduce(&state, .backendProbed(index: 1, .unreachable("10.0.0.6:8188: cannot connect: Connection refused")))
        _ = reduce(&state, .down)
        _ = reduce(&state, .newline)
        #expect(state.backend == 1 && state.status.isError && state.status.text.contains("did not answer"))
        // Esc closes without choosing; F11 again closes too.
        _ = reduce(&state, .showBackends)
        _ = reduce(&state, .up)
        _ = reduce(&state, .cancel)
        #expect(state.backendPanel == nil && state.backend == 1)
        _ = reduce(&state, .showBackends)
        _ = reduce(&state, .showBackends)
        #expect(state.backendPanel == nil)
        // Back to the local engine.
        _ = reduce(&state, .showBackends)
        _ = reduce(&state, .up)
        _ = reduce(&state, .up)
        _ = reduce(&state, .newline)
        #expect(state.backend == nil && state.backendLabel == "local")
        guard case .start? = reduce(&state, .generate).effects.first else { Issue.record("the local engine did not start"); return }
    }

    /// Space on the local engine's row: the local engine also takes drafts of grids spread over servers, with the
    /// studio's model and LoRA files; not while a LoRA that is on has no file here; never for F5.
    @Test func localEngineJoinsServerGrids() {
        var state = Self.state()
        state.backend = 0
        state.loras = [LoraEntry(name: "style", path: "/home/u/loras/style.safetensors", strength: 0.5)]
        _ = reduce(&state, .showBackends)
        _ = reduce(&state, .up)
        _ = reduce(&state, .insert(" "))
        #expect(state.localDrafts && state.status.text.contains("also takes drafts") && state.backendPanel != nil)
        #expect(render(state, columns: 160, rows: 48).lines.joined().contains("also drafts grids spread over servers (Space: no)"))
        _ = reduce(&state, .down)
        _ = reduce(&state, .insert(" "))
        #expect(state.localDrafts, "Space on a server's row does nothing")
        _ = reduce(&state, .cancel)
        guard case let .startRemote(run)? = reduce(&state, .explore).effects.first else { Issue.record("no grid: \(state.status.text)"); return }
        #expect(run.local == LocalDrafts(model: "/models/tiny-sd3", loras: [LoraChoice(path: "/home/u/loras/style.safetensors", strength: 0.5)],
                                         t5: .on, precision: .fp32))
        #expect(state.status.text.hasPrefix("Exploring 4 seeds on 2 servers + local"))
        _ = reduce(&state, .cancel)
        _ = reduce(&state, .generationStopped(error: nil))
        guard case let .startRemote(one)? = reduce(&state, .generate).effects.first else { Issue.record("no start"); return }
        #expect(one.local == nil)
        _ = reduce(&state, .cancel)
        _ = reduce(&state, .generationStopped(error: nil))
        state.loras.append(LoraEntry(name: "elsewhere", path: nil))
        guard case let .startRemote(without)? = reduce(&state, .explore).effects.first else { Issue.record("no grid"); return }
        #expect(without.local == nil, "a LoRA only the servers have keeps the local engine out")
    }

    @Test func otherPanelsCloseIt() {
        var state = Self.open()
        _ = reduce(&state, .showLoras)
        #expect(state.backendPanel == nil && state.loraPanel != nil)
        _ = reduce(&state, .showBackends)
        #expect(state.backendPanel != nil && state.loraPanel == nil)
        _ = reduce(&state, .showModels)
        #expect(state.backendPanel == nil && state.models != nil)
    }

    @Test func pickerSnapshot() throws {
        for (columns, rows) in RenderTests.sizes { try RenderTests.checkSnapshot("backends", Self.open(), columns: columns, rows: rows) }
    }

    /// F5 on a server: a ComfyUI job from the fields and the entry's file names; img2img's file is read by the session.
    @Test func generateBuildsTheJob() throws {
        var state = Self.state()
        state.backend = 0
        state.set(.steps, "12")
        state.set(.guidance, "4.5")
        state.set(.shift, "3")
        state.set(.seed, "77")
        state.set(.initImage, "/tmp/start.png")
        state.set(.strength, "0.4")
        state.t5 = .off
        state.loras = [LoraEntry(name: "style", path: "/home/u/loras/style.safetensors", strength: 0.5),
                       LoraEntry(name: "detail", path: nil, strength: 1)]
        let effects = reduce(&state, .generate).effects
        guard case let .startRemote(run)? = effects.first else { Issue.record("no remote start: \(state.status.text)"); return }
        #expect(!run.grid && run.servers == [Self.gpu] && run.initImagePath == "/tmp/start.png" && !run.useT5)
        let job = try #require(run.jobs.first)
        let p = job.parameters
        #expect(p.prompt == state.text(.prompt) && p.negativePrompt == "blurry" && p.width == 16 && p.height == 16)
        #expect(p.steps == 12 && p.guidanceScale == 4.5 && p.shift == 3 && p.seed == 77 && p.strength == 0.4)
        #expect(job.model == "sd3.5_medium.safetensors")
        #expect(job.loras == [.init(name: "style.safetensors", strength: 0.5), .init(name: "detail.safetensors", strength: 1)],
                "LoRAs go by file name; one not on this machine may be on the server")
        #expect(state.status.text == "Generating seed 77 on comfyui@10.0.0.5:8188…" && state.isRunning)
        // The server's own names go in as the job leaves for it; T5 stays out while the field is off.
        let sent = Self.gpu.job(job, useT5: run.useT5)
        #expect(sent.clipL == "clip_l.safetensors" && sent.clipG == "clip_g.safetensors" && sent.vae == "sd3_vae.safetensors" && sent.t5 == nil)
        #expect(Self.gpu.job(job, useT5: true).t5 == "t5xxl_fp16.safetensors")
    }

    @Test func refusals() {
        var state = Self.state()
        state.backend = 2
        #expect(reduce(&state, .generate).effects.isEmpty && !state.isRunning)
        #expect(state.status.isError && state.status.text == "No model for comfyui@127.0.0.1:8190: set model = \"FILE\" in [[backends]] '127.0.0.1:8190', or F11 picks another backend")
        #expect(reduce(&state, .explore).effects.isEmpty && state.explore == nil)
        state.backend = 0
        state.set(.variationSeed, "5")
        #expect(reduce(&state, .generate).effects.isEmpty && state.status.text.contains("variation seeds run on the local engine only"))
        state.set(.variationSeed, "")
        state.scheduler = .flash
        #expect(reduce(&state, .generate).effects.isEmpty && state.status.text.contains("flash scheduler runs on the local engine only"))
    }

    /// F6 on a server: one job per seed, spread over the chosen server and every other one with a model that did not
    /// fail to answer; drafts land in their cells in any order, and the grid finishes when all have.
    @Test func gridSpreadsOverServersAndFillsOutOfOrder() {
        var state = Self.state()
        state.backends.append(StudioBackend(name: "down", address: ServerAddress(host: "10.0.0.7", port: 8188), model: "m.safetensors"))
        state.backendStatus = [3: .unreachable("refused")]
        state.backend = 1
        state.set(.seed, "100")
        guard case let .startRemote(run)? = reduce(&state, .explore).effects.first else { Issue.record("no remote grid: \(state.status.text)"); return }
        #expect(run.grid && run.servers.map(\.name) == ["spare", "gpu"], "the chosen first, then the other server with a model")
        #expect(run.jobs.map(\.parameters.seed) == [100, 101, 102, 103] && run.jobs.allSatisfy { $0.parameters.decoder == .vae })
        #expect(state.status.text.hasPrefix("Exploring 4 seeds on 2 servers"))
        let image = { (v: UInt8) in RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: v, count: 12)) }
        _ = reduce(&state, .gridEvent(cell: 2, .step(index: 0, total: 8, sigma: 1, elapsed: 0.1, preview: Support.image)))
        #expect(state.explore?.rendering == 2 && state.explore?.preview == Support.image && state.job == .running(.denoising(step: 1, total: 8, elapsed: 0.1)))
        _ = reduce(&state, .gridEvent(cell: 1, .step(index: 3, total: 8, sigma: 1, elapsed: 0.4, preview: nil)))
        #expect(state.explore?.rendering == 1 && state.explore?.preview == nil, "another cell's preview is not shown in this one")
        for (cell, value) in [(3, UInt8(3)), (0, 0), (2, 2)] {
            _ = reduce(&state, .gridEvent(cell: cell, .finished(image: image(value), metadata: Support.metadata(), seconds: 1)))
            #expect(state.isRunning && state.explore?.images[cell] == image(value))
        }
        #expect(state.status.text.contains("3 of 4 seeds done"))
        _ = reduce(&state, .gridEvent(cell: 1, .finished(image: image(1), metadata: Support.metadata(), seconds: 1)))
        #expect(state.explore?.finishedCount == 4 && state.explore?.rendering == nil && state.job == .finished(seconds: 4))
        #expect(state.status.text.hasPrefix("4 seeds (4.0 s of rendering) on comfyui@10.0.0.6:8188"))
        // Enter refines the pick on the chosen server, at the full settings.
        _ = reduce(&state, .right)
        // Refining on a server without a model is refused with the same line as F5's, and the grid stays.
        var noModel = state
        noModel.backend = 2
        #expect(reduce(&noModel, .newline).effects.isEmpty && noModel.explore != nil && noModel.status.text.hasPrefix("No model for comfyui@127.0.0.1:8190"))
        guard case let .startRemote(refine)? = reduce(&state, .newline).effects.first else { Issue.record("no remote refine"); return }
        #expect(!refine.grid && refine.jobs.map(\.parameters.seed) == [101] && refine.jobs[0].parameters.width == 16 && refine.servers == [Self.spare])
    }

    @Test func cancelledOrFailedGridKeepsItsDrafts() {
        var state = Self.state()
        state.backend = 0
        _ = reduce(&state, .explore)
        _ = reduce(&state, .gridEvent(cell: 1, .finished(image: Support.image, metadata: Support.metadata(), seconds: 1)))
        #expect(reduce(&state, .cancel).effects == [.cancel] && state.job == .cancelling)
        _ = reduce(&state, .gridEvent(cell: 0, .finished(image: Support.image, metadata: Support.metadata(), seconds: 1)))
        #expect(state.explore?.finishedCount == 1, "nothing lands after Esc")
        _ = reduce(&state, .generationStopped(error: nil))
        #expect(state.job == .idle && state.status.text.hasPrefix("Cancelled: 1 of 4 seeds rendered"))
        _ = reduce(&state, .explore)
        _ = reduce(&state, .generationStopped(error: "2 of 4 drafts failed; the first: gpu: no model 'x'"))
        #expect(state.job == .failed("2 of 4 drafts failed; the first: gpu: no model 'x'") && state.explore?.rendering == nil)
    }
}
