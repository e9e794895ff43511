import ImageIO
import SD3
@testable import StudioCore
import Testing

/// One test per action (and per engine event): what the state becomes and what the session is asked to do.
@Suite struct ReducerTests {
    @Test func insertTypesIntoTheFocusedField() {
        var state = Support.state()
        #expect(reduce(&state, .insert("中文 🎨")).redraw)
        #expect(state.text(.prompt) == "中文 🎨")
        state.focus = .steps
        _ = reduce(&state, .insert("0"))
        #expect(state.text(.steps) == "280")
    }

    @Test func insertIntoASingleLineFieldFlattensNewlines() {
        var state = Support.state()
        state.focus = .initImage
        _ = reduce(&state, .insert("a\nb.png"))
        #expect(state.text(.initImage) == "a b.png")
    }

    @Test func newlineBreaksPromptsAndLeavesSingleLineFields() {
        var state = Support.state(prompt: "a")
        _ = reduce(&state, .newline)
        #expect(state.text(.prompt) == "a\n")
        state.focus = .steps
        _ = reduce(&state, .newline)
        #expect(state.focus == .guidance && state.text(.steps) == "28")
    }

    @Test func backspaceAndDelete() {
        var state = Support.state(prompt: "abc")
        _ = reduce(&state, .backspace)
        #expect(state.text(.prompt) == "ab")
        _ = reduce(&state, .home)
        _ = reduce(&state, .delete)
        #expect(state.text(.prompt) == "b")
    }

    @Test func leftRightMoveTheCursorOrCycleChoices() {
        var state = Support.state(prompt: "ab")
        _ = reduce(&state, .left)
        #expect(state.editors[.prompt]?.cursor == 1)
        _ = reduce(&state, .right)
        #expect(state.editors[.prompt]?.cursor == 2)
        state.focus = .seedMode
        _ = reduce(&state, .right)
        #expect(state.seedMode == .random)
        _ = reduce(&state, .left)
        _ = reduce(&state, .left)
        #expect(state.seedMode == .increment)
        state.focus = .t5
        _ = reduce(&state, .insert(" "))
        #expect(state.t5 == .int8)
        _ = reduce(&state, .right)
        #expect(state.t5 == .off)
        _ = reduce(&state, .right)
        #expect(state.t5 == .on)
        _ = reduce(&state, .left)
        #expect(state.t5 == .off)
        state.focus = .precision
        _ = reduce(&state, .right)
        #expect(state.precision == .bf16)
    }

    @Test func sizePresetSetsWidthAndHeight() {
        var state = Support.state()
        state.focus = .sizePreset
        _ = reduce(&state, .right)
        #expect(state.text(.width) == "1152" && state.text(.height) == "896")
        state.set(.width, "100")
        _ = reduce(&state, .right)  // from a custom size, the first preset
        #expect(state.text(.width) == "1024" && state.text(.height) == "1024")
    }

    @Test func upDownFollowWrappedRowsInPrompts() {
        var state = Support.state(prompt: "first\nsecond")
        _ = reduce(&state, .up)
        #expect(state.editors[.prompt]?.cursor == 5)
        _ = reduce(&state, .down)
        #expect(state.editors[.prompt]?.cursor == 11)  // column 5 of "second"
        _ = reduce(&state, .down)
        #expect(state.editors[.prompt]?.cursor == 12)  // past the last row: the end
        state.focus = .guidance
        _ = reduce(&state, .up)
        #expect(state.focus == .steps)
        _ = reduce(&state, .down)
        #expect(state.focus == .guidance)
    }

    @Test func homeEndAndWordJumps() {
        var state = Support.state(prompt: "a red circle")
        _ = reduce(&state, .home)
        #expect(state.editors[.prompt]?.cursor == 0)
        _ = reduce(&state, .wordRight)
        _ = reduce(&state, .wordRight)
        #expect(state.editors[.prompt]?.cursor == 5)
        _ = reduce(&state, .end)
        _ = reduce(&state, .wordLeft)
        #expect(state.editors[.prompt]?.cursor == 6)
    }

    @Test func ctrlUAndCtrlK() {
        var state = Support.state(prompt: "keep\ndrop this")
        _ = reduce(&state, .wordLeft)
        _ = reduce(&state, .deleteToLineStart)
        #expect(state.text(.prompt) == "keep\nthis")
        _ = reduce(&state, .deleteToLineEnd)
        #expect(state.text(.prompt) == "keep\n")
    }

    @Test func tabAndShiftTabCycleThroughAllFields() {
        var state = Support.state()
        for _ in FieldID.allCases { _ = reduce(&state, .nextField) }
        #expect(state.focus == .prompt)
        _ = reduce(&state, .previousField)
        #expect(state.focus == .scheduler)
    }

    @Test func helpTogglesAndEscClosesIt() {
        var state = Support.state()
        _ = reduce(&state, .toggleHelp)
        #expect(state.showHelp)
        #expect(reduce(&state, .cancel).effects.isEmpty)
        #expect(!state.showHelp)
    }

    @Test func generateBuildsTheRequestFromTheFields() {
        var state = Support.state(prompt: "  a red circle ")
        state.set(.negativePrompt, "blur")
        state.set(.steps, "3")
        state.set(.width, "16")
        state.set(.height, "32")
        state.set(.seed, "9")
        state.set(.shift, "2.5")
        state.precision = .bf16
        let reaction = reduce(&state, .generate)
        guard case let .start(request) = reaction.effects.first else { Issue.record("no start: \(reaction)"); return }
        #expect(request.parameters.prompt == "a red circle" && request.parameters.negativePrompt == "blur")
        #expect(request.parameters.steps == 3 && request.parameters.width == 16 && request.parameters.height == 32)
        #expect(request.parameters.seed == 9 && request.parameters.shift == 2.5 && request.precision == .bf16)
        #expect(request.model == "/models/tiny-sd3" && request.initImagePath == nil && request.t5 == .on)
        #expect(state.job == .running(.starting))
        // A second F5 while running is refused.
        #expect(reduce(&state, .generate).effects.isEmpty)
    }

    @Test func theRequestCarriesTheT5Choice() {
        for choice in T5Mode.allCases {
            var state = Support.state(prompt: "a red circle")
            state.t5 = choice
            guard case let .start(request) = reduce(&state, .generate).effects.first else { Issue.record("no start for \(choice)"); continue }
            #expect(request.t5 == choice)
        }
    }

    @Test func generateRefusesBadFieldsMissingModelAndEmptyPrompt() {
        var state = Support.state()
        #expect(reduce(&state, .generate).effects.isEmpty)
        #expect(state.status == Status(text: "Type a prompt first", isError: true))
        state.set(.prompt, "x")
        state.set(.steps, "many")
        #expect(reduce(&state, .generate).effects.isEmpty)
        #expect(state.status.text == "Steps: 'many' is not a valid number" && state.job == .idle)
        var noModel = StudioState(model: nil)
        noModel.set(.prompt, "x")
        #expect(reduce(&noModel, .generate).effects.isEmpty && noModel.status.text.contains("--model"))
    }

    @Test func seedModes() {
        var state = Support.state(prompt: "x")
        state.seedMode = .increment
        state.set(.seed, "41")
        _ = reduce(&state, .generate)
        _ = reduce(&state, .generationStopped(error: nil))
        _ = reduce(&state, .generate)
        #expect(state.text(.seed) == "42")
        _ = reduce(&state, .generationStopped(error: nil))
        state.seedMode = .random
        _ = reduce(&state, .generate)
        let first = state.text(.seed)
        _ = reduce(&state, .generationStopped(error: nil))
        _ = reduce(&state, .generate)
        #expect(first != state.text(.seed) && first != "42" && UInt64(first)! <= UInt64(UInt32.max))
        _ = reduce(&state, .generationStopped(error: nil))
        // A seed typed after those runs is where increment mode goes on from (it once drew the last seed + 1).
        state.seedMode = .increment
        state.set(.seed, "7")
        _ = reduce(&state, .generate)
        #expect(state.text(.seed) == "7")
        _ = reduce(&state, .generationStopped(error: nil))
        _ = reduce(&state, .generate)
        #expect(state.text(.seed) == "8")
    }

    /// Ctrl-C (it was ignored): a running generation is cancelled; idle, the first says how to quit, the second quits.
    @Test func ctrlCStopsARunOrQuitsOnTheSecondPress() {
        #expect(Bindings.action(for: .ctrl("c")).map { if case .interrupt = $0 { true } else { false } } == true)
        var state = Support.state(prompt: "x")
        _ = reduce(&state, .generate)
        #expect(reduce(&state, .interrupt).effects == [.cancel])
        #expect(state.job == .cancelling && !state.shouldQuit)
        #expect(reduce(&state, .interrupt).effects.isEmpty && !state.shouldQuit, "a second Ctrl-C while cancelling does not quit")
        #expect(state.status.text.contains("Ctrl-C again quits"), "it says how to (\(state.status.text))")
        _ = reduce(&state, .generationStopped(error: nil))
        #expect(reduce(&state, .interrupt).effects.isEmpty && !state.shouldQuit)
        #expect(state.status.text.contains("Ctrl-C again quits") && state.status.text.contains("F10"))
        #expect(reduce(&state, .interrupt).effects == [.quit] && state.shouldQuit)
    }

    /// Keys typed while the window is too small went into the fields ("600x" in Steps); now only quitting acts.
    @Test func keysWaitWhileTheScreenIsTooSmall() {
        var state = Support.state(prompt: "x")
        state.focus = .steps
        let steps = state.text(.steps)
        _ = reduce(&state, .resize(columns: 60, rows: 20))
        for action: Action in [.insert("x"), .backspace, .nextField, .generate, .toggleHelp, .showLoras] { _ = reduce(&state, action) }
        #expect(state.text(.steps) == steps && state.focus == .steps && !state.isRunning && !state.showHelp)
        _ = reduce(&state, .resize(columns: 80, rows: 24))
        _ = reduce(&state, .insert("7"))
        #expect(state.text(.steps) != steps, "keys act again once it fits")
        _ = reduce(&state, .resize(columns: 60, rows: 20))
        #expect(reduce(&state, .quit).effects == [.quit] && state.shouldQuit)
    }

    /// The preview follows: a cancelled run goes back to the last finished image (it kept the noisy x0), a recalled
    /// PNG shows its own pixels (the previous image stayed).
    @Test func thePreviewFollowsCancelsAndRecalls() {
        func image(_ value: UInt8) -> RGBImage { RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: value, count: 12)) }
        var state = Support.state(prompt: "x")
        _ = reduce(&state, .generate)
        _ = reduce(&state, .engine(.finished(image: image(200), metadata: Support.metadata(seed: 1, prompt: "x"), seconds: 1)))
        _ = reduce(&state, .generate)
        _ = reduce(&state, .engine(.step(index: 0, total: 4, sigma: 0.9, elapsed: 0.1, preview: image(7))))
        #expect(state.preview == image(7))
        _ = reduce(&state, .cancel)
        _ = reduce(&state, .generationStopped(error: nil))
        #expect(state.preview == image(200), "the last finished image, not the cancelled run's x0")
        _ = reduce(&state, .recalledImage(image(90)))
        #expect(state.preview == image(90))
    }

    /// Letters typed into a whole-number field are refused as they are typed (Steps read "abc" until F5).
    @Test func wholeNumberFieldsTakeOnlyDigits() {
        var state = Support.state(prompt: "x")
        state.focus = .steps
        state.set(.steps, "")
        for c in ["1", "a", "2", "x", "٣"] { _ = reduce(&state, .insert(c)) }
        #expect(state.text(.steps) == "12")
        #expect(state.status.isError && state.status.text.hasPrefix("Steps takes a whole number"))
        _ = reduce(&state, .insert("34"))  // a paste of digits goes in whole
        #expect(state.text(.steps) == "1234")
        state.focus = .guidance
        state.set(.guidance, "")
        _ = reduce(&state, .insert("4.5"))
        #expect(state.text(.guidance) == "4.5", "decimal fields are checked at F5, as before")
    }

    /// A step count out of range is named while it is typed, not first at F5 (Steps read "0" until then).
    @Test func stepsOutOfRangeAreNamedAsTheyAreTyped() {
        var state = Support.state(prompt: "x")
        state.focus = .steps
        state.set(.steps, "")
        _ = reduce(&state, .insert("0"))
        #expect(state.status.isError && state.status.text == "Steps 0: must be between 1 and 1000")
        _ = reduce(&state, .backspace)
        _ = reduce(&state, .insert("28"))
        #expect(!state.status.text.hasPrefix("Steps"))
        _ = reduce(&state, .insert("000000000000000000000"))
        #expect(state.status.isError && state.status.text.hasSuffix("must be between 1 and 1000"))
    }

    @Test func cancelOnlyWhileRunning() {
        var state = Support.state(prompt: "x")
        #expect(reduce(&state, .cancel) == .none)
        _ = reduce(&state, .generate)
        #expect(reduce(&state, .cancel).effects == [.cancel])
        #expect(state.job == .cancelling)
        // Late events after a cancel do not bring the progress back.
        _ = reduce(&state, .engine(.decoding))
        #expect(state.job == .cancelling)
    }

    @Test func toggleFavoriteNeedsASavedImage() {
        var state = Support.state()
        #expect(reduce(&state, .toggleFavorite).effects.isEmpty && state.status.isError)
        state.current = HistoryRecord(id: 3, file: "/o/00003.png", date: .init(timeIntervalSince1970: 0), metadata: Support.metadata())
        #expect(reduce(&state, .toggleFavorite).effects == [.setFavorite(id: 3, favorite: true)])
        #expect(reduce(&state, .toggleFavorite).effects == [.setFavorite(id: 3, favorite: false)])
    }

    @Test func quitCancelsARunningGeneration() {
        var state = Support.state(prompt: "x")
        #expect(reduce(&state, .quit).effects == [.quit] && state.shouldQuit)
        var running = Support.state(prompt: "x")
        _ = reduce(&running, .generate)
        #expect(reduce(&running, .quit).effects == [.cancel, .quit])
    }

    @Test func resizeRecordsTheSize() {
        var state = Support.state()
        _ = reduce(&state, .resize(columns: 160, rows: 48))
        #expect(state.columns == 160 && state.rows == 48)
    }

    @Test func engineEventsDriveProgressAndPreview() {
        var state = Support.state(prompt: "x")
        _ = reduce(&state, .generate)
        _ = reduce(&state, .engine(.loading(model: "tiny")))
        #expect(state.job == .running(.loading))
        _ = reduce(&state, .engine(.loaded(seconds: 0.5)))
        #expect(state.status.text == "Model loaded in 0.5 s")
        _ = reduce(&state, .engine(.encodingPrompt))
        #expect(state.job == .running(.encoding))
        _ = reduce(&state, .engine(.encodedPrompt(seconds: 0, cached: true, warnings: [])))
        #expect(state.status.text == "Prompt unchanged: text encoders skipped")
        _ = reduce(&state, .engine(.encodedPrompt(seconds: 0.25, cached: false, warnings: ["T5 prompt truncated"])))
        #expect(state.status.text == "Prompt encoded in 0.25 s; T5 prompt truncated")
        _ = reduce(&state, .engine(.step(index: 1, total: 4, sigma: 0.5, elapsed: 1, preview: Support.image)))
        #expect(state.job == .running(.denoising(step: 2, total: 4, elapsed: 1)) && state.preview == Support.image)
        _ = reduce(&state, .engine(.decoding))
        #expect(state.job == .running(.decoding))
        let reaction = reduce(&state, .engine(.finished(image: Support.image, metadata: Support.metadata(), seconds: 2)))
        #expect(reaction.effects == [.save(image: Support.image, metadata: Support.metadata())])
        #expect(state.job == .finished(seconds: 2))
    }

    @Test func generationStoppedByErrorOrCancel() {
        var state = Support.state(prompt: "x")
        _ = reduce(&state, .generate)
        _ = reduce(&state, .generationStopped(error: "size 17×16 is not a multiple of 4"))
        #expect(state.job == .failed("size 17×16 is not a multiple of 4") && state.status.isError)
        _ = reduce(&state, .generate)
        _ = reduce(&state, .generationStopped(error: nil))
        #expect(state.job == .idle && state.status == Status(text: "Cancelled", isError: false))
    }

    @Test func savedFailedAndFavoriteSaved() {
        var state = Support.state()
        let record = HistoryRecord(id: 1, file: "/o/00001-7-a.png", date: .init(timeIntervalSince1970: 0), metadata: Support.metadata())
        _ = reduce(&state, .saved(record))
        #expect(state.current == record && state.status.text == "Saved /o/00001-7-a.png")
        _ = reduce(&state, .failed("disk full"))
        #expect(state.status == Status(text: "disk full", isError: true))
        _ = reduce(&state, .favoriteSaved(id: 1, favorite: true))
        #expect(state.status.text == "★ Starred #1")
    }

    @Test func bindingTableMapsKeysAndCharacters() {
        #expect(Bindings.action(for: .function(5)).map { "\($0)" } == "generate")
        #expect(Bindings.action(for: .ctrl("g")).map { "\($0)" } == "generate")
        #expect(Bindings.action(for: .ctrl("q")).map { "\($0)" } == "quit")
        #expect(Bindings.action(for: .character("x")).map { "\($0)" } == "insert(\"x\")")
        #expect(Bindings.action(for: .function(12))?.opensPanel == TrainingPanel.self)
        #expect(Bindings.action(for: .function(13)) == nil)
        // Every key is bound once.
        let keys = Bindings.table.flatMap(\.keys)
        #expect(Set(keys).count == keys.count)
    }
}
