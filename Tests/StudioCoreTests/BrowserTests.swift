import Foundation
import ImageIO
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

/// The favorites/history browser and the recall prompt: reducer steps (what the state becomes, which effects
/// the session is asked for) and render snapshots (Snapshots/browser-*.txt, STUDIO_RECORD_SNAPSHOTS=1 rewrites).
@Suite struct BrowserTests {
    static func record(_ id: Int, _ prompt: String, favorite: Bool = false, note: String = "") -> HistoryRecord {
        var metadata = Support.metadata(seed: UInt64(100 + id), prompt: prompt)
        metadata.negativePrompt = id == 2 ? "blurry" : ""
        return HistoryRecord(id: id, file: "/out/0000\(id)-\(100 + id)-x.png", date: Date(timeIntervalSince1970: 1_700_000_000 + Double(id) * 60),
                             metadata: metadata, favorite: favorite, note: note)
    }

    static let records = [record(3, "a blue square on sand", favorite: true, note: "use for the poster"),
                          record(2, "a red circle, 水彩", favorite: true), record(1, "a green triangle")]

    /// The favorites browser with its records and the first two thumbnails loaded.
    static func browsing() -> StudioState {
        var state = Support.state(prompt: "draft")
        _ = reduce(&state, .showFavorites)
        _ = reduce(&state, .browserLoaded(records))
        _ = reduce(&state, .thumbnailLoaded(id: 3, image: Support.image))
        _ = reduce(&state, .thumbnailLoaded(id: 2, image: Support.image))
        return state
    }

    @Test func openingAsksTheStoreAndThenTheVisibleThumbnails() {
        var state = Support.state()
        #expect(reduce(&state, .showHistory).effects == [.loadBrowser(favoritesOnly: false)])
        #expect(state.browser?.kind == .history && state.browser?.records == nil)
        let loaded = reduce(&state, .browserLoaded(Self.records))
        #expect(loaded.effects == [.loadThumbnails(Self.records.map { Thumbnail(id: $0.id, file: $0.file) })])
        // Moving does not ask again for what was asked.
        #expect(reduce(&state, .down).effects.isEmpty && state.browser?.selected == 1)
        _ = reduce(&state, .thumbnailLoaded(id: 1, image: nil))
        #expect(state.browser?.missing == [1])
        // The same key closes it; the other one switches.
        _ = reduce(&state, .showFavorites)
        #expect(state.browser?.kind == .favorites)
        _ = reduce(&state, .showFavorites)
        #expect(state.browser == nil)
    }

    @Test func typingSearchesPromptsNegativesAndNotes() {
        var state = Self.browsing()
        _ = reduce(&state, .down)
        for c in "RED 水" { _ = reduce(&state, .insert(String(c))) }
        #expect(state.browser?.shown.map(\.id) == [2] && state.browser?.selected == 0)
        _ = reduce(&state, .deleteToLineStart)
        _ = reduce(&state, .insert("poster"))
        #expect(state.browser?.shown.map(\.id) == [3])
        _ = reduce(&state, .insert(" nothing"))
        #expect(state.browser?.shown.isEmpty == true)
        #expect(reduce(&state, .newline).effects.isEmpty && state.browser != nil)
        for _ in 0..<8 { _ = reduce(&state, .backspace) }
        #expect(state.browser?.query == "poster")
        // Keys the browser has no use for do not reach the hidden editor.
        _ = reduce(&state, .insert("zzz"))
        for action in [Action.newline, .left, .right, .delete, .deleteToLineEnd, .nextField, .wordLeft, .up, .down] {
            #expect(reduce(&state, action).effects.isEmpty && state.browser?.mode == .browsing, "\(action)")
        }
        _ = reduce(&state, .cancel)
        #expect(state.text(.prompt) == "draft" && state.focus == .prompt)
    }

    @Test func enterRecallsEveryFieldAndClosesTheBrowser() {
        var state = Self.browsing()
        state.seedMode = .random
        (state.t5, state.precision) = (.off, .bf16)
        _ = reduce(&state, .down)
        _ = reduce(&state, .newline)
        let m = Self.records[1].metadata
        #expect(state.browser == nil)
        #expect(state.text(.prompt) == m.prompt && state.text(.negativePrompt) == "blurry")
        #expect(state.text(.seed) == "\(m.seed)" && state.seedMode == .fixed)
        #expect(state.text(.steps) == "3" && state.text(.guidance) == "7" && state.text(.width) == "16" && state.text(.height) == "16")
        #expect(state.text(.shift) == "3" && state.t5 == .on && state.precision == .fp32 && state.maxSequenceLength == 256)
        #expect(state.status.text.hasPrefix("Recalled #2 seed 102"), "\(state.status.text)")
    }

    /// T5 comes back as the image was made: int8 weights as int8, no T5 as off.
    @Test func recallRestoresTheT5Choice() {
        for (t5, weights, choice) in [(true, "int8", T5Mode.int8), (false, nil, .off), (true, nil, .on)] {
            var state = Support.state()
            state.t5 = choice == .off ? .int8 : .off
            var metadata = Support.metadata()
            (metadata.t5, metadata.t5Weights) = (t5, weights)
            state.recall(RecalledParameters(metadata), from: "#1")
            #expect(state.t5 == choice, "t5 \(t5), weights \(weights ?? "nil")")
        }
    }

    /// The details pane names the T5 choice an image was made with.
    @Test func detailsShowTheT5Choice() {
        for (t5, weights, shown) in [(true, "int8", "T5 int8"), (false, nil, "T5 off"), (true, nil, "T5 on")] {
            var state = Self.browsing()
            state.browser?.records?[0].metadata.t5 = t5
            state.browser?.records?[0].metadata.t5Weights = weights
            let screen = render(state, columns: 160, rows: 48).lines.joined(separator: "\n")
            #expect(screen.contains("shift 3 · \(shown) · fp32"), "\(screen)")
        }
    }

    /// Del asks the session what deleting would do to the file; the question names the whole path, or says only the
    /// entry goes; only y deletes.
    @Test func deleteAsksFirstAndOnlyYDeletes() {
        var state = Self.browsing()
        #expect(reduce(&state, .delete).effects == [.planDelete(id: 3, file: "/out/00003-103-x.png")] && state.browser?.mode == .browsing)
        _ = reduce(&state, .deletePlanned(id: 3, deletion: .file("/out/00003-103-x.png")))
        #expect(state.browser?.mode == .confirmDelete(.file("/out/00003-103-x.png")))
        #expect(state.status.text == "Delete #3 and its file? y/n: /out/00003-103-x.png")
        #expect(reduce(&state, .insert("n")).effects.isEmpty && state.browser?.mode == .browsing && state.status.text == "Not deleted")
        _ = reduce(&state, .deletePlanned(id: 3, deletion: .entryOnly(reason: "/elsewhere/x.png is not in the outputs folder /out, kept")))
        #expect(state.status.text == "Remove #3 from the list only? y/n: /elsewhere/x.png is not in the outputs folder /out, kept")
        #expect(reduce(&state, .insert("y")).effects == [.delete(id: 3, file: "/out/00003-103-x.png")])
        state.current = Self.records[0]
        _ = reduce(&state, .deleted(id: 3, message: "Deleted #3 and its file 00003-103-x.png"))
        #expect(state.browser?.shown.map(\.id) == [2, 1] && state.current == nil && state.status.text == "Deleted #3 and its file 00003-103-x.png")
        // An answer about an entry no longer selected asks nothing.
        _ = reduce(&state, .deletePlanned(id: 3, deletion: .file("/out/00003-103-x.png")))
        #expect(state.browser?.mode == .browsing)
    }

    @Test func notesAreEditedOnFavoritesOnly() {
        var state = Self.browsing()
        _ = reduce(&state, .editNote)
        #expect(state.browser?.mode == .editingNote(TextEditor("use for the poster")))
        _ = reduce(&state, .insert(" and the card"))
        #expect(reduce(&state, .newline).effects == [.setNote(id: 3, note: "use for the poster and the card")])
        _ = reduce(&state, .noteSaved(id: 3, note: "use for the poster and the card"))
        #expect(state.browser?.records?.first?.note == "use for the poster and the card" && state.browser?.mode == .browsing)
        _ = reduce(&state, .editNote)
        _ = reduce(&state, .insert("x"))
        _ = reduce(&state, .cancel)
        #expect(state.browser?.mode == .browsing && state.browser?.records?.first?.note == "use for the poster and the card")
        var history = Support.state()
        _ = reduce(&history, .showHistory)
        _ = reduce(&history, .browserLoaded([Self.records[2]]))
        _ = reduce(&history, .editNote)
        #expect(history.browser?.mode == .browsing && history.status.text == "Notes are for favorites: F2 stars #1 first")
    }

    @Test func f2StarsTheSelectedImage() {
        var state = Self.browsing()
        state.current = Self.records[0]
        #expect(reduce(&state, .toggleFavorite).effects == [.setFavorite(id: 3, favorite: false)])
        #expect(state.browser?.records?.first?.favorite == false && state.current?.favorite == false)
    }

    @Test func escClosesAndKeysPassThroughForGenerateAndQuit() {
        var state = Self.browsing()
        #expect(reduce(&state, .generate).effects.count == 1)
        #expect(state.browser != nil)
        _ = reduce(&state, .cancel)
        #expect(state.browser == nil && state.text(.prompt) == "draft")
        var quitting = Self.browsing()
        #expect(reduce(&quitting, .quit).effects == [.quit])
    }

    @Test func aStoreThatCannotBeReadClosesTheBrowserWithItsError() {
        var state = Support.state()
        _ = reduce(&state, .showFavorites)
        _ = reduce(&state, .failed("/data/studio.sqlite: disk I/O error"))
        #expect(state.browser == nil && state.status == Status(text: "/data/studio.sqlite: disk I/O error", isError: true))
    }

    @Test func anImageFinishedWhileTheHistoryIsOpenJoinsIt() {
        var state = Support.state()
        _ = reduce(&state, .showHistory)
        _ = reduce(&state, .browserLoaded(Self.records))
        _ = reduce(&state, .down)
        let new = Self.record(4, "a yellow star")
        #expect(reduce(&state, .saved(new)).effects == [.loadThumbnails([Thumbnail(id: 4, file: new.file)])])
        #expect(state.browser?.shown.map(\.id) == [4, 3, 2, 1] && state.browser?.current?.id == 2 && state.current == new)
    }

    @Test func recallPromptAsksForAPath() {
        var state = Support.state()
        _ = reduce(&state, .openRecall)
        _ = reduce(&state, .insert("~/in.png"))
        #expect(reduce(&state, .newline).effects == [.recall(path: NSHomeDirectory() + "/in.png")] && state.recallPath == nil)
        var comfy = RecalledParameters(source: .comfyUI, prompt: "a teapot")
        (comfy.seed, comfy.steps, comfy.width, comfy.height, comfy.sampler) = (9, 24, 832, 1216, "dpmpp_2m")
        _ = reduce(&state, .recalled(comfy, from: "comfy.png"))
        #expect(state.text(.prompt) == "a teapot" && state.text(.seed) == "9" && state.text(.width) == "832" && state.text(.shift) == "")
        #expect(state.status.text == "Recalled comfy.png seed 9 (from ComfyUI; sampler dpmpp_2m → Euler)")
        _ = reduce(&state, .openRecall)
        _ = reduce(&state, .insert("x"))
        _ = reduce(&state, .cancel)
        #expect(state.recallPath == nil && state.text(.prompt) == "a teapot")
        // A foreign image's LoRAs are named, not turned on, and the reader's warnings are part of the status.
        var a1111 = RecalledParameters(source: .a1111, prompt: "a cat")
        (a1111.seed, a1111.loras, a1111.warnings) = (3, [.init(name: "style-a", strength: 0.8)], ["2 other prompt(s) in this graph, not recalled"])
        state.recall(a1111, from: "a.png")
        #expect(state.status.text == "Recalled a.png seed 3 (from A1111/Forge; LoRAs style-a 0.8 not turned on; 2 other prompt(s) in this graph, not recalled)",
                "\(state.status.text)")
    }

    static func snapshotState(_ name: String) -> StudioState {
        var state = browsing()
        switch name {
        case "browser-confirm":
            _ = reduce(&state, .delete)
            _ = reduce(&state, .deletePlanned(id: 3, deletion: .file("/out/00003-103-x.png")))
        case "browser-note": _ = reduce(&state, .editNote)
        case "browser-empty":
            _ = reduce(&state, .insert("zebra"))
        case "browser-ascii": state.graphics = .ascii
        case "recall-prompt":
            state = Support.state(prompt: "draft")
            _ = reduce(&state, .openRecall)
            _ = reduce(&state, .insert("/tmp/comfy.png"))
        default: break
        }
        return state
    }

    @Test(arguments: ["browser", "browser-confirm", "browser-note", "browser-empty", "browser-ascii", "recall-prompt"])
    func snapshot(_ name: String) throws {
        for (columns, rows) in RenderTests.sizes {
            var state = Self.snapshotState(name)
            _ = reduce(&state, .resize(columns: columns, rows: rows))
            try RenderTests.checkSnapshot(name, state, columns: columns, rows: rows)
        }
    }
}
