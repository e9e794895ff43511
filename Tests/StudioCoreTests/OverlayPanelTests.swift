import Foundation
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

/// The panels as the reducer reaches them (OverlayPanel.swift): one open at a time, keys to the open one unless the
/// help is over it, keys scoped to one panel nowhere else, and the session's reports never eaten by whichever is open.
@Suite struct OverlayPanelTests {
    /// Every panel key of the binding table, in table order, with the panel type it opens.
    static var openers: [(Action, any OverlayPanel.Type)] { Bindings.table.compactMap { binding in binding.opens.map { (binding.action, type(of: $0)) } } }

    @Test func openingAPanelReplacesTheOneOpenAndClosesTheHelp() throws {
        #expect(Self.openers.map { "\($0.1)" } == ["Browser", "Browser", "RecallPrompt", "ModelPicker", "BackendPanel", "LoraPanel", "TrainingPanel", "SourcesPanel"])
        var state = Support.state(prompt: "a red circle")
        for (action, panel) in Self.openers {
            _ = reduce(&state, .toggleHelp)
            _ = reduce(&state, action)
            let open = try #require(state.overlay.panel, "\(action) opened nothing")
            #expect(type(of: open) == panel, "\(action) opened \(type(of: open))")
            #expect(!state.showHelp, "\(action) left the help over its panel")
        }
        #expect(state.sourcesPanel != nil && state.trainingPanel == nil && state.browser == nil && state.models == nil && state.loraPanel == nil)
    }

    /// While the help is up the panel under it gets no keys; Esc closes the help first, then the panel's own Esc acts.
    @Test func theHelpIsALayerOverThePanel() {
        var state = Support.state(prompt: "a red circle")
        _ = reduce(&state, .showLoras)
        for c in ["a", "b"] { _ = reduce(&state, .insert(c)) }
        _ = reduce(&state, .toggleHelp)
        #expect(state.showHelp && state.loraPanel != nil)
        _ = reduce(&state, .down)
        _ = reduce(&state, .backspace)
        #expect(state.loraPanel?.input.text == "ab" && state.loraPanel?.selected == 0)
        _ = reduce(&state, .cancel)
        #expect(!state.showHelp && state.loraPanel?.input.text == "ab")
        _ = reduce(&state, .cancel)
        #expect(state.loraPanel?.input.text == "" && state.loraPanel != nil, "the panel's first Esc clears what was typed")
        _ = reduce(&state, .cancel)
        #expect(state.overlay.panel == nil)
    }

    /// Ctrl-N is the browser's (Bindings.table's scope): in another panel it is not typed into it, and with none open
    /// it changes nothing.
    @Test func aScopedKeyActsInItsPanelOnly() {
        var state = Support.state(prompt: "a red circle")
        let before = state.status
        #expect(reduce(&state, .editNote) == .none && state.status == before && state.text(.prompt) == "a red circle")
        _ = reduce(&state, .showModels)
        _ = reduce(&state, .insert("x"))
        #expect(reduce(&state, .editNote) == .none && state.models?.query.text == "x")
        _ = reduce(&state, .showFavorites)
        _ = reduce(&state, .browserLoaded([BrowserTests.record(3, "a blue square", favorite: true, note: "poster")]))
        _ = reduce(&state, .editNote)
        #expect(state.browser?.mode == .editingNote(TextEditor("poster")))
    }

    /// The session's answers reach the main screen whichever panel is open: a recall read while F9 or F8 opened
    /// still fills the fields and shows its image (the LoRA list and the model picker used to take them as keys).
    @Test func reportsAreNotEatenByTheOpenPanel() {
        for opener in [Action.showLoras, .showModels, .showBackends, .showTraining, .showSources] {
            var state = Support.state(prompt: "draft")
            _ = reduce(&state, .openRecall)
            for c in "/tmp/a.png" { _ = reduce(&state, .insert(String(c))) }
            _ = reduce(&state, .newline)
            _ = reduce(&state, opener)
            #expect(state.overlay.panel != nil && state.recalling == "/tmp/a.png")
            var parameters = RecalledParameters(source: .a1111, prompt: "a teapot")
            parameters.seed = 5
            _ = reduce(&state, .recalled(parameters, from: "a.png"))
            #expect(state.text(.prompt) == "a teapot" && state.text(.seed) == "5" && state.recalling == nil, "with \(opener) open")
            _ = reduce(&state, .recalledImage(Support.image))
            let shown = state.preview == Support.image
            #expect(shown, "with \(opener) open, the recalled image is not the preview")
        }
    }

    /// A grid spread over a server keeps filling while F9 or F8 is open (they took its drafts' events as keys).
    @Test func gridDraftsLandWhileAPanelIsOpen() {
        for opener in [Action.showLoras, .showModels, .showBackends, .showTraining, .showSources] {
            var state = BackendPickerTests.state()
            state.backend = 0
            guard case .startRemote? = reduce(&state, .explore).effects.first else { Issue.record("no remote grid: \(state.status.text)"); return }
            _ = reduce(&state, opener)
            _ = reduce(&state, .gridEvent(cell: 1, .finished(image: Support.image, metadata: Support.metadata(), seconds: 1)))
            let landed = state.explore?.images[1] == Support.image
            #expect(landed && state.explore?.finishedCount == 1, "with \(opener) open, the draft of cell 1 did not land")
        }
    }

    /// F1, F2, F5, F6, F7 and F10 act as on the main screen whichever panel is open (the browser keeps F2 for its
    /// selected entry): before, the recall prompt took F1, F2, F6 and F7 as nothing, the browser F6 and F7, the model
    /// picker F2 and F7, the LoRA list F2.
    @Test func theGlobalKeysActInEveryPanel() {
        for (opener, panel) in Self.openers {
            func opened() -> StudioState {
                var state = Support.state(prompt: "a red circle")
                state.themes = [.dark, .dark]
                _ = reduce(&state, opener)
                return state
            }
            var state = opened()
            _ = reduce(&state, .toggleHelp)
            #expect(state.showHelp, "F1 in \(panel)")
            state = opened()
            #expect(reduce(&state, .generate).effects.contains { if case .start = $0 { true } else { false } }, "F5 in \(panel)")
            state = opened()
            _ = reduce(&state, .explore)
            #expect(state.explore != nil, "F6 in \(panel)")
            state = opened()
            _ = reduce(&state, .cycleTheme)
            #expect(state.themeIndex == 1, "F7 in \(panel)")
            state = opened()
            _ = reduce(&state, .quit)
            #expect(state.shouldQuit, "F10 in \(panel)")
            guard panel != Browser.self else { continue }
            state = opened()
            _ = reduce(&state, .toggleFavorite)
            #expect(state.status.text == "No saved image to star yet", "F2 in \(panel)")
        }
    }
}
