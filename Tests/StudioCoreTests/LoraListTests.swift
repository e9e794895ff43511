import Foundation
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

/// The LoRA list (F9) as state and reducer: the session scans and reads files, the reducer keeps the list, every
/// generation request carries the LoRAs that are on; a recalled image brings its LoRAs back or says which is missing.
@Suite struct LoraListTests {
    static let style = LoraEntry(name: "style", path: "/loras/style.safetensors", hash: "0123456789ab", layout: "kohya")
    static let detail = LoraEntry(name: "detail", path: "/loras/detail.safetensors", hash: "ba9876543210", layout: "diffusers")
    static let candidates = [LoraCatalog.Candidate(name: "style", path: "/loras/style.safetensors"),
                             LoraCatalog.Candidate(name: "extra", path: "/loras/extra.safetensors")]

    static func request(_ state: inout StudioState) -> GenerationRequest? {
        guard case let .start(request)? = reduce(&state, .generate).effects.first else { return nil }
        state.job = .idle
        return request
    }

    @Test func openAddToggleStrengthRemove() throws {
        var state = Support.state(prompt: "a red circle")
        #expect(reduce(&state, .showLoras).effects == [.scanLoras])
        #expect(render(state, columns: 80, rows: 24).lines.joined(separator: "\n").contains("Looking…"))
        _ = reduce(&state, .lorasFound(Self.candidates, folder: "/loras"))
        // Enter on the first candidate asks the session to read it; what it reads joins the list, on at 1.
        #expect(reduce(&state, .newline).effects == [.readLora("/loras/style.safetensors")])
        _ = reduce(&state, .loraRead(Self.style))
        #expect(state.loras == [Self.style] && state.loraPanel?.selected == 0)
        #expect(state.loraCandidates.map(\.name) == ["extra"], "a listed file is no longer offered")
        #expect(try #require(Self.request(&state)).loras == [LoraChoice(path: "/loras/style.safetensors", strength: 1)])

        for _ in 0..<3 { _ = reduce(&state, .left) }
        #expect(state.loras[0].strength == 0.85)
        for _ in 0..<17 { _ = reduce(&state, .left) }
        #expect(state.loras[0].strength == 0, "twenty steps of 0.05 from 1 land exactly on 0")
        _ = reduce(&state, .right)
        #expect(state.loras[0].strength == 0.05)
        // A typed number sets the strength of the selected LoRA.
        for c in "0.7" { _ = reduce(&state, .insert(String(c))) }
        #expect(reduce(&state, .newline).effects.isEmpty && state.loras[0].strength == 0.7)
        for c in "9" { _ = reduce(&state, .insert(String(c))) }
        _ = reduce(&state, .newline)
        #expect(state.status.isError && state.status.text.contains("strength 9") && state.loras[0].strength == 0.7)

        _ = reduce(&state, .insert(" "))
        #expect(state.loras[0].enabled == false)
        #expect(try #require(Self.request(&state)).loras.isEmpty, "a LoRA turned off is not applied")
        _ = reduce(&state, .newline)
        #expect(state.loras[0].enabled, "Enter on a listed LoRA turns it on again")
        _ = reduce(&state, .delete)
        #expect(state.loras.isEmpty && state.status.text == "Removed LoRA style")
        #expect(try #require(Self.request(&state)).loras.isEmpty)
        _ = reduce(&state, .cancel)
        #expect(state.loraPanel == nil)
    }

    @Test func typedPathsAndNamesAreReadByTheSession() {
        var state = Support.state()
        _ = reduce(&state, .showLoras)
        for c in "~/my lora" { _ = reduce(&state, .insert(String(c))) }
        // While something is typed, Space, Left and Delete edit it.
        _ = reduce(&state, .left)
        _ = reduce(&state, .delete)
        #expect(state.loraPanel?.input.text == "~/my lor")
        #expect(reduce(&state, .newline).effects == [.readLora("~/my lor")] && state.loraPanel?.input.text == "")
        for c in "abc" { _ = reduce(&state, .insert(String(c))) }
        _ = reduce(&state, .cancel)
        #expect(state.loraPanel != nil && state.loraPanel?.input.text == "", "Esc first clears what was typed")
        // A file that could not be read: the session's one-line reason in the status line, the list unchanged.
        _ = reduce(&state, .failed("/x/flux.safetensors: a LoRA for Flux, not SD3 (key transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight)"))
        #expect(state.status.isError && state.status.text.hasPrefix("/x/flux.safetensors: a LoRA for Flux") && state.loras.isEmpty)
        // F9 again closes the panel; the fields are back.
        _ = reduce(&state, .showLoras)
        #expect(state.loraPanel == nil)
    }

    @Test func severalLorasKeepTheirOrderAndTheSummaryShowsThem() throws {
        var state = Support.state(prompt: "a red circle")
        _ = reduce(&state, .loraRead(Self.style))
        _ = reduce(&state, .loraRead(Self.detail))
        state.loras[1].strength = 0.5
        #expect(try #require(Self.request(&state)).loras == [LoraChoice(path: "/loras/style.safetensors", strength: 1),
                                                             LoraChoice(path: "/loras/detail.safetensors", strength: 0.5)])
        let screen = render(state, columns: 100, rows: 30).lines.joined(separator: "\n")
        #expect(screen.contains("Settings · LoRA style 1, detail 0.5"))
        // Reading a listed file again keeps its strength.
        _ = reduce(&state, .loraRead(Self.detail))
        #expect(state.loras.count == 2 && state.loras[1].strength == 0.5)
        // Exploring uses them too.
        guard case let .start(draft)? = reduce(&state, .explore).effects.first else { Issue.record("no draft started"); return }
        #expect(draft.loras.count == 2)
    }

    static func recorded(_ loras: [ImageMetadata.LoraRecord], mode: String = "run-time") -> ImageMetadata {
        var m = Support.metadata()
        (m.loras, m.loraMode) = (loras, mode)
        return m
    }

    @Test func recallBringsBackTheRecordedLoras() throws {
        var state = Support.state()
        _ = reduce(&state, .loraRead(Self.detail))
        _ = reduce(&state, .loraRead(LoraEntry(name: "extra", path: "/loras/extra.safetensors")))
        let records = [ImageMetadata.LoraRecord(name: "style", strength: 0.5, hash: "0123456789ab", path: "/old/style.safetensors"),
                       ImageMetadata.LoraRecord(name: "detail", strength: 0.25, hash: "ba9876543210")]
        #expect(RecalledParameters(Self.recorded(records)).lines.contains("LoRAs: style 0.5 (0123456789ab), detail 0.25 (ba9876543210) run-time"))
        let effects = state.recall(RecalledParameters(Self.recorded(records)), from: "#3")
        #expect(effects == [.locateLoras(records, from: "#3")])
        #expect(state.status.text.hasSuffix("finding its LoRAs…"))
        _ = reduce(&state, .generate)
        #expect(state.status.isError && state.job == .idle, "no generation before the LoRAs are found")
        _ = reduce(&state, .lorasLocated([LoraCatalog.Location(record: records[0], path: "/loras/style.safetensors", hashMatches: true),
                                          LoraCatalog.Location(record: records[1], path: "/loras/detail.safetensors", hashMatches: true)],
                                         folder: "/loras", from: "#3"))
        #expect(state.loras.map(\.name) == ["style", "detail", "extra"], "the recorded LoRAs first, in their order")
        #expect(state.loras.map(\.enabled) == [true, true, false] && state.loras.map(\.strength) == [0.5, 0.25, 1])
        #expect(!state.status.isError && state.status.text == "Recalled #3 seed 7 · LoRA style 0.5, detail 0.25", "\(state.status.text)")
        #expect(try #require(Self.request(&state)).loras == [LoraChoice(path: "/loras/style.safetensors", strength: 0.5),
                                                             LoraChoice(path: "/loras/detail.safetensors", strength: 0.25)])
        // An image made without LoRAs turns them all off.
        #expect(state.recall(RecalledParameters(Support.metadata()), from: "#4").isEmpty)
        #expect(state.loras.count == 3 && !state.loras.contains(where: \.enabled))
    }

    @Test func aMissingLoraIsNamedAndStopsGeneration() throws {
        var state = Support.state(prompt: "x")
        let record = ImageMetadata.LoraRecord(name: "style", strength: 0.8, hash: "0123456789ab", path: "/gone/style.safetensors")
        state.recall(RecalledParameters(Self.recorded([record])), from: "a.png")
        _ = reduce(&state, .lorasLocated([LoraCatalog.Location(record: record, path: nil, hashMatches: false)], folder: "/models/loras", from: "a.png"))
        #expect(state.status.isError)
        #expect(state.status.text == "Recalled a.png: LoRA style not found (not at /gone/style.safetensors nor in /models/loras): F9 to add it or turn it off")
        #expect(state.loras == [LoraEntry(name: "style", path: nil, strength: 0.8, hash: "0123456789ab")])
        _ = reduce(&state, .generate)
        #expect(state.job == .idle && state.status.text.hasPrefix("LoRA style is not on this machine"), "never a silently different image")
        // Adding the file (found under another name) is not the missing entry: turning the missing one off lets it run.
        _ = reduce(&state, .showLoras)
        _ = reduce(&state, .insert(" "))
        #expect(try #require(Self.request(&state)).loras.isEmpty)
        // A file with the recorded name but another hash is used, with a warning.
        state.recall(RecalledParameters(Self.recorded([record])), from: "a.png")
        _ = reduce(&state, .lorasLocated([LoraCatalog.Location(record: record, path: "/models/loras/style.safetensors", hashMatches: false)],
                                         folder: "/models/loras", from: "a.png"))
        #expect(state.status.isError && state.status.text.contains("is not the file the image was made with (hash 0123456789ab)"))
        #expect(state.loras.map(\.path) == ["/models/loras/style.safetensors"], "the missing entry became the found file")
    }

    @Test func mergedLorasAreNotedOnRecall() {
        var state = Support.state()
        let record = ImageMetadata.LoraRecord(name: "style", strength: 1, hash: "0123456789ab")
        state.recall(RecalledParameters(Self.recorded([record], mode: "merged")), from: "b.png")
        #expect(state.status.text.contains("merged by sd3 generate"))
    }

    static func panel() -> StudioState {
        var state = RenderTests.idle()
        _ = reduce(&state, .showLoras)
        _ = reduce(&state, .lorasFound(Self.candidates, folder: "/home/u/.local/share/sd3-studio/models/loras"))
        let missing = ImageMetadata.LoraRecord(name: "gone", strength: 1, hash: "fedcba987654")
        _ = reduce(&state, .lorasLocated([LoraCatalog.Location(record: missing, path: nil, hashMatches: false)], folder: "/l", from: "#1"))
        var detail = Self.detail
        (detail.strength, detail.enabled) = (0.5, false)
        state.loras = [Self.style, detail] + state.loras
        state.loraPanel?.selected = 0
        for c in "~/Downloads/" { _ = reduce(&state, .insert(String(c))) }
        return state
    }

    @Test func panelSnapshot() throws {
        for (columns, rows) in RenderTests.sizes { try RenderTests.checkSnapshot("loras", Self.panel(), columns: columns, rows: rows) }
        var closed = Self.panel()
        _ = reduce(&closed, .showLoras)
        for (columns, rows) in RenderTests.sizes { try RenderTests.checkSnapshot("loras-closed", closed, columns: columns, rows: rows) }
    }
}
