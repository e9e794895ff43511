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
}
