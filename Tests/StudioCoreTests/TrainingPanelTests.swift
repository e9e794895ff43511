import Foundation
import ImageIO
import SD3
@testable import StudioCore
import Testing

/// The training panel (F12) as values: its fields and their checks, Enter starting one job at a time, Esc stopping it,
/// the job's reports (progress, the loss plot, checkpoints, validation images) and the finished LoRA joining the list.
@Suite struct TrainingPanelTests {
    static func type(_ state: inout StudioState, _ text: String) {
        for c in text { _ = reduce(&state, .insert(String(c))) }
    }

    /// The panel open on the idle screen, with a data folder typed (the output then defaults to its name).
    static func open(data: String = "/data/stripes") -> StudioState {
        var state = RenderTests.idle()
        state.loraFolder = "/home/u/.local/share/sd3/models/loras"
        _ = reduce(&state, .showTraining)
        type(&state, data)
        return state
    }

    /// Field `field` set to `text` through the keys: Tab to it, clear it, type.
    static func set(_ state: inout StudioState, _ field: TrainingField, _ text: String) {
        while state.trainingPanel?.focus != field { _ = reduce(&state, .nextField) }
        _ = reduce(&state, .end)
        _ = reduce(&state, .deleteToLineStart)
        type(&state, text)
    }

    static func started() -> (StudioState, TrainingRequest) {
        var state = open()
        set(&state, .steps, "50")
        set(&state, .every, "10")
        set(&state, .validationPrompt, "a striped thing")
        guard case let .startTraining(request)? = reduce(&state, .newline).effects.first else { fatalError("not started: \(state.status.text)") }
        return (state, request)
    }

    /// Twenty steps reported, a checkpoint at 20 and a validation image: the panel with its sparkline.
    static func running() -> StudioState {
        var (state, _) = started()
        _ = reduce(&state, .training(.started(step: 0, steps: 50, images: 4)))
        for step in 1...20 {
            let loss = Float(0.9 - 0.03 * Double(step) + (step % 3 == 0 ? 0.08 : 0))
            _ = reduce(&state, .training(.step(step: step, steps: 50, loss: loss, secondsPerStep: 1.25)))
        }
        _ = reduce(&state, .training(.checkpoint(path: "/home/u/.local/share/sd3/models/loras/stripes.checkpoint", step: 20)))
        _ = reduce(&state, .training(.validation(step: 20, image: Support.image, path: "/home/u/.local/share/sd3/models/loras/stripes-step-20.png")))
        return state
    }

    @Test func f12OpensWithTheModelsSizeAndTheCLIsDefaults() {
        var state = RenderTests.idle()
        #expect(Bindings.action(for: .function(12))?.opensPanel == TrainingPanel.self)
        #expect(Bindings.action(for: .ctrl("t"))?.opensPanel == TrainingPanel.self)
        #expect(reduce(&state, .showTraining).effects.isEmpty)
        #expect(state.trainingPanel == TrainingPanel(focus: .data))
        let form = state.trainingForm
        #expect(form.text(.resolution) == "16" && form.text(.rank) == "4" && form.text(.steps) == "500" && form.text(.learningRate) == "1e-4")
        #expect(form.text(.every) == "50" && form.captions == .files)
        // Closing keeps what was typed; reopening does not take the width again.
        Self.type(&state, "/data/x")
        _ = reduce(&state, .showTraining)
        #expect(state.trainingPanel == nil && state.overlay.isNone)
        state.set(.width, "64")
        _ = reduce(&state, .showTraining)
        #expect(state.trainingForm.text(.data) == "/data/x" && state.trainingForm.text(.resolution) == "16")
        // Another panel takes its place; Esc with no job closes it.
        _ = reduce(&state, .showLoras)
        #expect(state.trainingPanel == nil && state.loraPanel != nil)
        _ = reduce(&state, .showTraining)
        #expect(reduce(&state, .cancel).effects.isEmpty && state.trainingPanel == nil)
    }

    @Test func keysEditTheFocusedFieldAndTheCaptionChoice() {
        var state = Self.open()
        #expect(state.trainingForm.text(.data) == "/data/stripes" && state.text(.prompt) == RenderTests.idle().text(.prompt), "typing goes to the panel")
        _ = reduce(&state, .nextField)
        #expect(state.trainingPanel?.focus == .captions)
        _ = reduce(&state, .insert(" "))
        #expect(state.trainingForm.captions == .instancePrompt)
        _ = reduce(&state, .left)
        #expect(state.trainingForm.captions == .files)
        _ = reduce(&state, .previousField)
        _ = reduce(&state, .up)
        #expect(state.trainingPanel?.focus == .output, "wraps around")
        _ = reduce(&state, .down)
        _ = reduce(&state, .backspace)
        #expect(state.trainingForm.text(.data) == "/data/stripe")
    }

    @Test func badFieldsAreRefusedBeforeStarting() {
        let cases: [(TrainingField, String, String)] = [
            (.rank, "0", "Rank: '0' must be a whole number from 1 to 4096"),
            (.rank, "four", "Rank: 'four' must be a whole number"),
            (.steps, "", "Steps: '' must be a whole number from 1"),
            (.steps, "2.5", "Steps: '2.5' must be a whole number"),
            (.learningRate, "0", "Learn rate: '0' must be a positive number below 1"),
            (.learningRate, "nan", "Learn rate: 'nan' must be a positive number"),
            (.learningRate, "fast", "Learn rate: 'fast' must be a positive number"),
            (.resolution, "40", "Resolution: 40 is not a multiple of 16"),
            (.resolution, "-16", "Resolution: '-16' must be a whole number from 16 to 4096"),
            (.every, "0", "Every: '0' must be a whole number from 1"),
            (.output, "../", "Output: '../' is not a file name"),
            (.data, "", "Data folder: type the folder of images"),
        ]
        for (field, text, expected) in cases {
            var state = Self.open()
            Self.set(&state, field, text)
            #expect(reduce(&state, .newline).effects.isEmpty, "\(field) '\(text)' started a job")
            #expect(state.status.isError && state.status.text.hasPrefix(expected), "\(field) '\(text)': \(state.status.text)")
            #expect(state.training == nil)
        }
        var instance = Self.open()
        instance.trainingForm.captions = .instancePrompt
        #expect(reduce(&instance, .newline).effects.isEmpty && instance.status.text.hasPrefix("Instance: type the prompt"))
        var noModel = StudioState(model: nil)
        noModel.loraFolder = "/l"
        _ = reduce(&noModel, .showTraining)
        Self.type(&noModel, "/data")
        #expect(reduce(&noModel, .newline).effects.isEmpty && noModel.status.text.hasPrefix("No model to train"))
    }

    @Test func enterStartsWithTheFieldsAndTheOutputInTheLoraFolder() {
        let (state, request) = Self.started()
        #expect(request == TrainingRequest(model: "/models/tiny-sd3", data: "/data/stripes", captionFiles: true, instancePrompt: nil, resolution: 16,
                                           rank: 4, steps: 50, learningRate: 1e-4, every: 10, validationPrompt: "a striped thing",
                                           output: "/home/u/.local/share/sd3/models/loras/stripes.safetensors", seed: 0, t5: .on, precision: .fp32))
        #expect(request.name == "stripes")
        #expect(state.training?.isActive == true && state.training?.phase == .preparing("loading tiny-sd3"))
        #expect(state.status.text == "Training stripes → /home/u/.local/share/sd3/models/loras/stripes.safetensors: loading the model…")
        // A name, a name with the extension, and a path.
        for (typed, output) in [("mine", "/l/mine.safetensors"), ("mine.safetensors", "/l/mine.safetensors"), ("/tmp/a/b", "/tmp/a/b.safetensors")] {
            #expect((try? trainingOutput(typed, data: "/data/stripes", folder: "/l")) == output, "\(typed)")
        }
    }

    @Test func oneJobAtATimeAndGenerationWaits() {
        var (state, _) = Self.started()
        #expect(reduce(&state, .newline).effects.isEmpty)
        #expect(state.status.isError && state.status.text.hasPrefix("Training stripes is running: one job at a time"))
        _ = reduce(&state, .training(.started(step: 0, steps: 50, images: 4)))
        _ = reduce(&state, .training(.step(step: 3, steps: 50, loss: 0.5, secondsPerStep: 2)))
        #expect(reduce(&state, .generate).effects.isEmpty && state.job == .idle)
        #expect(state.status.text == "Training stripes is running (step 3/50): local images wait until it ends (it uses every core); F12 then Esc stops it")
        #expect(reduce(&state, .explore).effects.isEmpty && state.explore == nil)
        // Nor does a grid's refinement (Enter on a finished grid).
        var grid = state
        grid.explore = Exploration(base: GenerationRequest(parameters: GenerationParameters(prompt: "a"), model: "/models/tiny-sd3", t5: .on,
                                                           precision: .fp32), draft: DraftSettings())
        (grid.trainingPanel, grid.status) = (nil, Status(text: "", isError: false))
        #expect(reduce(&grid, .newline).effects.isEmpty && grid.status.text.hasPrefix("Training stripes is running"), "\(grid.status.text)")
        // A ComfyUI server still renders (its GPU, not these cores); a grid spread over servers leaves the local engine out.
        var remote = state
        (remote.backends, remote.backend, remote.localDrafts) = ([BackendPickerTests.gpu], 0, true)
        guard case let .startRemote(run)? = reduce(&remote, .generate).effects.first else { Issue.record("no remote image: \(remote.status.text)"); return }
        #expect(run.jobs.count == 1 && remote.isRunning)
        remote.job = .idle
        guard case let .startRemote(grid)? = reduce(&remote, .explore).effects.first else { Issue.record("no remote grid: \(remote.status.text)"); return }
        #expect(grid.grid && grid.local == nil)
        // A generation running: Enter does not start a job.
        var generating = Self.open()
        _ = reduce(&generating, .showTraining)
        _ = reduce(&generating, .generate)
        #expect(generating.isRunning)
        _ = reduce(&generating, .showTraining)
        #expect(reduce(&generating, .newline).effects.isEmpty && generating.status.text.hasPrefix("A generation is running: training waits"))
    }

    @Test func escStopsTheJobKeepingItsCheckpoint() {
        var state = Self.running()
        #expect(reduce(&state, .cancel).effects == [.stopTraining])
        #expect(state.training?.phase == .stopping && state.trainingPanel != nil, "the panel stays open while it stops")
        #expect(reduce(&state, .cancel).effects.isEmpty, "asked once")
        _ = reduce(&state, .training(.checkpoint(path: "/l/stripes.checkpoint", step: 21)))
        _ = reduce(&state, .training(.stopped(step: 21, steps: 50, checkpoint: "/l/stripes.checkpoint")))
        #expect(state.training?.phase == .stopped && state.training?.isActive == false && state.training?.checkpointStep == 21)
        #expect(state.status.text == "Stopped stripes at step 21 of 50: Enter with the same settings resumes · checkpoint /l/stripes.checkpoint")
        // Enter again: the same request (the session resumes from the checkpoint it finds).
        guard case let .startTraining(again)? = reduce(&state, .newline).effects.first else { Issue.record("not restarted"); return }
        #expect(again.output == "/home/u/.local/share/sd3/models/loras/stripes.safetensors")
        _ = reduce(&state, .training(.started(step: 21, steps: 50, images: 4)))
        #expect(state.training?.firstStep == 21 && state.training?.losses == [] && state.status.text.contains("from step 21 (resumed)"))
        // With the panel closed, Esc (nothing else to cancel) stops it too.
        _ = reduce(&state, .showTraining)
        #expect(state.trainingPanel == nil)
        #expect(reduce(&state, .cancel).effects == [.stopTraining])
        // Stopped while preparing: nothing to keep.
        _ = reduce(&state, .training(.stopped(step: 0, steps: 50, checkpoint: nil)))
        #expect(state.status.text == "Stopped stripes before its first step: nothing to keep")
    }

    @Test func theFinishedLoraJoinsTheList() {
        var state = Self.running()
        state.loras = [LoraEntry(name: "style", path: "/l/style.safetensors")]
        let entry = LoraEntry(name: "stripes", path: "/home/u/.local/share/sd3/models/loras/stripes.safetensors", hash: "0123456789ab", layout: "diffusers")
        let reaction = reduce(&state, .training(.finished(output: entry.path!, steps: 50, seconds: 61.4, lora: entry, problem: nil)))
        #expect(reaction.effects.isEmpty)
        #expect(state.loras == [LoraEntry(name: "style", path: "/l/style.safetensors"), entry] && state.loras[1].enabled && state.loras[1].strength == 1)
        #expect(state.training?.phase == .finished && state.training?.isActive == false)
        #expect(state.status.text == "Trained stripes (50 steps, 61 s): on in the LoRA list (F9) from the next image · \(entry.path!)")
        // The next image applies it.
        _ = reduce(&state, .showTraining)
        guard case let .start(request)? = reduce(&state, .generate).effects.first else { Issue.record("no generation: \(state.status.text)"); return }
        #expect(request.loras.map(\.path) == ["/l/style.safetensors", entry.path!])
        // An open LoRA panel is rescanned, so the file shows among the folder's files too.
        var open = Self.running()
        _ = reduce(&open, .showLoras)
        #expect(reduce(&open, .training(.finished(output: entry.path!, steps: 50, seconds: 1, lora: entry, problem: nil))).effects == [.scanLoras])
        var unreadable = Self.running()
        _ = reduce(&unreadable, .training(.finished(output: "/l/x.safetensors", steps: 50, seconds: 1, lora: nil, problem: "LoRA x: damaged")))
        #expect(unreadable.status.isError && unreadable.loras.isEmpty && unreadable.status.text.hasSuffix("could not read it: LoRA x: damaged"))
    }

    @Test func failuresAreOneStatusLine() {
        var (state, _) = Self.started()
        _ = reduce(&state, .training(.failed("/data/stripes/a.png: 16×40 is smaller than the resolution 32")))
        #expect(state.status == Status(text: "Training stripes: /data/stripes/a.png: 16×40 is smaller than the resolution 32", isError: true))
        #expect(state.training?.isActive == false)
        #expect(render(state, columns: 80, rows: 24).lines.contains { $0.contains("Failed: /data/stripes/a.png") })
    }

    @Test func sparklineScalesStepsToTheWidth() {
        #expect(Sparkline.rows([1, 2, 3, 4, 5, 6, 7, 8, 9], width: 20, height: 1) == ["▁▂▃▄▅▅▆▇█"])
        #expect(Sparkline.rows([0, 1], width: 4, height: 2) == [" █", "▁█"])
        #expect(Sparkline.rows([2, 2, 2], width: 4, height: 1) == ["▄▄▄"], "a flat loss sits in the middle")
        // More steps than columns: each column the mean of its steps.
        #expect(Sparkline.columns([1, 3, 5, 7, 9, 11], width: 3) == [2, 6, 10])
        #expect(Sparkline.columns([1, 2, 3, 4, 5], width: 2) == [1.5, 4])
        #expect(Sparkline.rows(Array(repeating: 1, count: 500), width: 38, height: 3)[2].count == 38)
    }

    @Test(arguments: ["training"])
    func snapshot(_ name: String) throws {
        for (columns, rows) in RenderTests.sizes { try RenderTests.checkSnapshot(name, Self.running(), columns: columns, rows: rows) }
        let screen = render(Self.running(), columns: 80, rows: 24).lines
        #expect(screen.contains { $0.contains("step 20/50") && $0.contains("1.25 s/step") && $0.contains("ETA 38 s") })
        #expect(screen.contains { $0.contains("validation · step 20") })
        #expect(screen.contains { $0.contains("▁") && $0.contains("█") }, "no sparkline")
        // Closed, the job's progress is the progress line.
        var closed = Self.running()
        _ = reduce(&closed, .showTraining)
        #expect(render(closed, columns: 80, rows: 24).lines[22].hasPrefix("train stripes 20/50 "))
    }
}

private extension Overlay {
    var isNone: Bool { if case .none = self { true } else { false } }
}
