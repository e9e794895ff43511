import SD3
@testable import StudioCore
import Testing

/// The model picker (F8): the session scans, arrows pick, Enter switches the studio's model (and starts the
/// fields from that model's defaults), a broken candidate is refused by name, Esc closes.
@Suite struct ModelPickerTests {
    static let demo = ModelPicker.Item(
        entry: ModelCatalog.Entry(model: "/models/sd3-demo", layout: "diffusers folder", kind: "SD3-style MMDiT", bytes: 19_320_000,
                                  encoders: ["CLIP-L", "CLIP-G", "T5-XXL"], problem: nil),
        defaults: {
            var d = ModelDefaults()
            (d.width, d.height, d.steps, d.guidanceScale, d.shift, d.maxSequenceLength) = (64, 64, 20, 3, 3, 32)
            return d
        }())
    static let medium = ModelPicker.Item(
        entry: ModelCatalog.Entry(model: "stabilityai/stable-diffusion-3-medium-diffusers", layout: "Hugging Face cache (diffusers)",
                                  kind: "SD3 Medium", bytes: 15_500_000_000, encoders: ["CLIP-L", "CLIP-G", "T5-XXL"], problem: nil),
        defaults: nil)
    static let broken = ModelPicker.Item(
        entry: ModelCatalog.Entry(model: "/models/flux.safetensors", layout: "single file", kind: "?", bytes: 1,
                                  encoders: [], problem: "a FLUX checkpoint, not SD3"),
        defaults: nil)

    @Test func openScanPickAndSwitch() {
        var state = Support.state(prompt: "a red circle")
        state.model = "/models/sd3-demo"
        #expect(reduce(&state, .showModels).effects == [.scanModels])
        #expect(state.models == ModelPicker())
        #expect(render(state, columns: 80, rows: 24).lines.joined(separator: "\n").contains("Looking for models…"))
        _ = reduce(&state, .modelsFound([Self.demo, Self.medium, Self.broken]))
        #expect(state.models?.selected == 0, "the current model is selected first")
        let screen = render(state, columns: 100, rows: 30).lines.joined(separator: "\n")
        #expect(screen.contains("● /models/sd3-demo") && screen.contains("SD3 Medium · Hugging Face cache (diffusers) · 15.50 GB"))
        #expect(screen.contains("cannot be used: a FLUX checkpoint, not SD3"))
        _ = reduce(&state, .down)
        _ = reduce(&state, .newline)
        #expect(state.models == nil && state.model == "stabilityai/stable-diffusion-3-medium-diffusers")
        #expect(state.status.text.contains("loads with the next image") && !state.status.isError)
        // The request of the next image names the new model.
        guard case let .start(request)? = reduce(&state, .generate).effects.first else { Issue.record("no start"); return }
        #expect(request.model == "stabilityai/stable-diffusion-3-medium-diffusers")
    }

    @Test func switchingAppliesTheModelsDefaults() {
        var state = Support.state()
        state.model = "/elsewhere"
        _ = reduce(&state, .showModels)
        _ = reduce(&state, .modelsFound([Self.demo]))
        _ = reduce(&state, .newline)
        #expect(state.model == "/models/sd3-demo" && state.text(.width) == "64" && state.text(.steps) == "20" && state.maxSequenceLength == 32)
    }

    @Test func brokenEntryIsRefusedAndEscCloses() {
        var state = Support.state()
        let before = state.model
        _ = reduce(&state, .showModels)
        _ = reduce(&state, .modelsFound([Self.broken, Self.demo]))
        _ = reduce(&state, .newline)
        #expect(state.model == before && state.status.isError && state.status.text.contains("FLUX"))
        _ = reduce(&state, .up)
        #expect(state.models?.selected == 0)
        _ = reduce(&state, .cancel)
        #expect(state.models == nil && state.model == before)
        // A scan that arrives after the picker closed changes nothing.
        #expect(reduce(&state, .modelsFound([Self.demo])).redraw == false && state.models == nil)
    }

    /// Typing filters the list; a repo id not listed offers a pull; its progress is the status line; Esc cancels it;
    /// a finished pull is listed (rescanned) and picked; an error is one line.
    @Test func typeFilterPullProgressAndCancel() throws {
        var state = Support.state()
        state.model = "/models/sd3-demo"
        _ = reduce(&state, .showModels)
        _ = reduce(&state, .modelsFound([Self.demo, Self.medium, Self.broken]))
        for c in "stabil" { _ = reduce(&state, .insert(String(c))) }
        #expect(state.models?.shown.map(\.entry.model) == ["stabilityai/stable-diffusion-3-medium-diffusers"] && state.models?.pullable == nil)
        _ = reduce(&state, .deleteToLineStart)
        #expect(state.models?.shown.count == 3 && state.models?.selected == 1, "the selected model stays selected when the filter goes")
        for c in "stabilityai/stable-diffusion-3.5-medium" { _ = reduce(&state, .insert(String(c))) }
        #expect(state.models?.pullable == "stabilityai/stable-diffusion-3.5-medium" && state.models?.rowCount == 1)
        #expect(reduce(&state, .newline).effects == [.pull(repo: "stabilityai/stable-diffusion-3.5-medium", skipT5: false)])
        #expect(state.pull == PullJob(repo: "stabilityai/stable-diffusion-3.5-medium"))
        try RenderTests.checkSnapshot("pull-picker", state, columns: 80, rows: 24)
        _ = reduce(&state, .newline)
        #expect(state.status.isError && state.status.text.hasPrefix("Already pulling stabilityai/stable-diffusion-3.5-medium"))
        _ = reduce(&state, .cancel)
        _ = reduce(&state, .cancel)
        #expect(state.models == nil)
        _ = reduce(&state, .pullProgress(repo: "stabilityai/stable-diffusion-3.5-medium", progress: "1.2 GB / 4.5 GB  35.2 MB/s  ETA 1m32s  3/12 files"))
        _ = reduce(&state, .failed("something else went wrong"))
        #expect(render(state, columns: 80, rows: 24).lines.last == "something else went wrong", "an error shows over the progress")
        _ = reduce(&state, .favoriteSaved(id: 1, favorite: true))
        try RenderTests.checkSnapshot("pulling", state, columns: 80, rows: 24)
        #expect(reduce(&state, .cancel).effects == [.cancelPull] && state.pull?.cancelling == true)
        #expect(render(state, columns: 80, rows: 24).lines.last == "Cancelling the pull of stabilityai/stable-diffusion-3.5-medium…")
        #expect(reduce(&state, .cancel).redraw == false, "a second Esc asks nothing more")
        _ = reduce(&state, .pullStopped(repo: "stabilityai/stable-diffusion-3.5-medium", error: nil))
        #expect(state.pull == nil && !state.status.isError && state.status.text.hasSuffix("pull it again to resume"))

        // Done with the picker open: rescanned, the pulled model picked.
        _ = reduce(&state, .showModels)
        _ = reduce(&state, .modelsFound([Self.demo, Self.medium]))
        for c in "org/new" { _ = reduce(&state, .insert(String(c))) }
        state.t5 = .off
        #expect(reduce(&state, .newline).effects == [.pull(repo: "org/new", skipT5: true)], "T5 off: pulled without T5")
        #expect(state.status.text == "Pulling org/new into the Hugging Face cache without T5 (the T5 field is off)")
        #expect(reduce(&state, .pullFinished(repo: "org/new", snapshot: "/hub/models--org--new/snapshots/abc")).effects == [.scanModels])
        #expect(state.status.text == "Pulled org/new into /hub/models--org--new/snapshots/abc: Enter in the model list (F8) switches to it")
        var pulled = Self.medium
        pulled.entry = ModelCatalog.Entry(model: "org/new", layout: "Hugging Face cache (diffusers)", kind: "SD3 Medium", bytes: 1, encoders: [], problem: nil)
        _ = reduce(&state, .modelsFound([Self.demo, Self.medium, pulled]))
        _ = reduce(&state, .cancel)
        #expect(state.models?.shown.count == 3 && state.models?.selected == 2, "clearing the filter keeps the pulled model picked")
        // A failed pull: the hub's one-line reason.
        _ = reduce(&state, .deleteToLineStart)
        for c in "org/secret" { _ = reduce(&state, .insert(String(c))) }
        _ = reduce(&state, .newline)
        _ = reduce(&state, .pullStopped(repo: "org/secret", error: "org/secret is gated: accept its licence at https://huggingface.co/org/secret, then …"))
        #expect(state.status.isError && state.status.text.hasPrefix("Pull of org/secret: org/secret is gated"))
    }
}
