import Foundation
import ImageIO
import SD3
@testable import StudioCore
import Testing

/// Seed exploration in the reducer and on screen: F6 starts the first draft, each finished draft starts the next,
/// arrows pick, Enter refines at the full settings, Esc cancels mid-grid and then leaves.
@Suite struct ExploreTests {
    static func state() -> StudioState {
        var state = Support.state(prompt: "a red circle")
        state.set(.width, "64")
        state.set(.height, "48")
        state.set(.steps, "20")
        state.set(.seed, "100")
        return state
    }

    static func started(_ effects: [Effect]) -> GenerationRequest? {
        guard case let .start(request)? = effects.first, effects.count == 1 else { return nil }
        return request
    }

    static func finish(_ state: inout StudioState, seed: UInt64) -> Reaction {
        reduce(&state, .engine(.finished(image: Support.image, metadata: Support.metadata(seed: seed), seconds: 0.5)))
    }

    @Test func draftsAreAtTheFullSizeWithAtMostTheFullSteps() {
        let draft = DraftSettings()
        #expect(draft.scale == 1 && draft.side(1024) == 1024 && draft.side(64) == 64 && draft.side(48) == 48)
        #expect(draft.steps(full: 28) == 8 && draft.steps(full: 5) == 5 && draft.steps(full: 8) == 8)
    }

    @Test func scaledDraftSidesAreMultiplesOf16() {
        var draft = DraftSettings()
        draft.scale = 0.5
        #expect(draft.side(1024) == 512 && draft.side(64) == 32 && draft.side(1216) == 608 && draft.side(832) == 416)
        #expect(draft.side(48) == 32, "24 rounds to the nearest multiple of 16, 32")
        #expect(draft.side(16) == 16 && draft.side(32) == 16)
        var quarter = DraftSettings()
        quarter.scale = 0.25
        #expect(quarter.side(1024) == 256 && quarter.side(64) == 16)
    }

    @Test func f6RendersEachSeedInTurnAtTheDraftSettings() throws {
        var state = Self.state()
        let first = try #require(Self.started(reduce(&state, .explore).effects))
        #expect(first.parameters.seed == 100 && first.parameters.width == 64 && first.parameters.height == 48 && first.parameters.steps == 8)
        #expect(first.parameters.prompt == "a red circle")
        let grid = try #require(state.explore)
        #expect(grid.seeds == [100, 101, 102, 103] && grid.rendering == 0 && grid.base.parameters.steps == 20)
        #expect(state.isRunning && state.status.text.hasPrefix("Exploring seed 100 (1 of 4) at 64×48, 8 steps"))
        // Steps preview into the cell, not the main preview.
        _ = reduce(&state, .engine(.step(index: 0, total: 8, sigma: 0.9, elapsed: 0.1, preview: Support.image)))
        #expect(state.explore?.preview == Support.image && state.preview == nil)
        for seed in UInt64(101)...103 {
            let next = try #require(Self.started(Self.finish(&state, seed: seed - 1).effects), "no start after seed \(seed - 1)")
            #expect(next.parameters.seed == seed && next.parameters.width == 64 && next.parameters.steps == 8)
        }
        let last = Self.finish(&state, seed: 103)
        #expect(last.effects.isEmpty, "drafts are not saved and nothing follows the last: \(last.effects)")
        #expect(state.explore?.finishedCount == 4 && state.explore?.rendering == nil && !state.isRunning)
        #expect(state.job == .finished(seconds: 2))
        #expect(state.status.text.hasPrefix("4 seeds in 2.0 s"))
        #expect(state.lastSeed == 103, "increment mode continues after the grid")
    }

    @Test func arrowsPickAndEnterRefinesAtTheFullSettings() throws {
        var state = Self.state()
        state.draft.count = 9
        _ = reduce(&state, .explore)
        for seed in UInt64(100)..<109 { _ = Self.finish(&state, seed: seed) }
        _ = reduce(&state, .right)
        _ = reduce(&state, .down)
        #expect(state.explore?.selected == 4)
        _ = reduce(&state, .right)
        _ = reduce(&state, .right)  // stays in the last column
        _ = reduce(&state, .down)
        #expect(state.explore?.selected == 8)
        _ = reduce(&state, .up)
        _ = reduce(&state, .left)
        #expect(state.explore?.selected == 4)
        let refine = try #require(Self.started(reduce(&state, .newline).effects))
        #expect(refine.parameters.seed == 104 && refine.parameters.width == 64 && refine.parameters.height == 48 && refine.parameters.steps == 20)
        #expect(state.explore == nil && state.text(.seed) == "104" && state.isRunning)
        #expect(state.text(.prompt) == "a red circle", "Enter in the grid must not type a newline")
        // The refinement is an ordinary generation: it is saved.
        let saved = Self.finish(&state, seed: 104)
        #expect(saved.effects.count == 1)
        if case .save? = saved.effects.first {} else { Issue.record("the refinement was not saved: \(saved.effects)") }
    }

    /// With a TAESD3 the drafts decode with it and the refinement with the VAE; without, both with the VAE.
    @Test func draftsDecodeWithTAESDAndTheRefinementWithTheVAE() throws {
        for decoder in ImageDecoder.allCases {
            var state = Self.state()
            state.draft.decoder = decoder
            let first = try #require(Self.started(reduce(&state, .explore).effects))
            #expect(first.parameters.decoder == decoder)
            for seed in UInt64(100)..<103 {
                let next = try #require(Self.started(Self.finish(&state, seed: seed).effects))
                #expect(next.parameters.decoder == decoder)
            }
            _ = Self.finish(&state, seed: 103)
            let refine = try #require(Self.started(reduce(&state, .newline).effects))
            #expect(refine.parameters.decoder == .vae && refine.parameters.steps == 20)
        }
    }

    @Test func escCancelsMidGridThenLeaves() throws {
        var state = Self.state()
        _ = reduce(&state, .explore)
        _ = Self.finish(&state, seed: 100)
        #expect(reduce(&state, .cancel).effects == [.cancel])
        _ = reduce(&state, .generationStopped(error: nil))
        #expect(state.explore?.finishedCount == 1 && state.explore?.rendering == nil && !state.isRunning)
        #expect(state.status.text.hasPrefix("Cancelled: 1 of 4 seeds rendered"))
        // Enter still refines a finished pick; Esc leaves the grid.
        _ = reduce(&state, .cancel)
        #expect(state.explore == nil && state.status.text == "Left the seed grid")
        #expect(reduce(&state, .cancel).effects.isEmpty)
    }

    @Test func refineWaitsForTheGridAndErrorsStopIt() {
        var state = Self.state()
        _ = reduce(&state, .explore)
        #expect(reduce(&state, .newline).effects.isEmpty)
        #expect(state.status.isError && state.status.text.hasPrefix("The grid is still rendering"))
        #expect(reduce(&state, .explore).effects.isEmpty, "F6 while rendering starts nothing")
        _ = reduce(&state, .generationStopped(error: "disk full"))
        #expect(state.job == .failed("disk full") && state.explore?.rendering == nil)
    }

    @Test func f5LeavesTheGridAndBadFieldsStartNothing() {
        var state = Self.state()
        state.set(.steps, "x")
        #expect(reduce(&state, .explore).effects.isEmpty && state.explore == nil)
        #expect(state.status.text == "Steps: 'x' is not a valid number")
        state.set(.steps, "20")
        _ = reduce(&state, .explore)
        _ = reduce(&state, .cancel)
        _ = reduce(&state, .generationStopped(error: nil))
        _ = reduce(&state, .generate)
        #expect(state.explore == nil)
    }

    @Test func variationFieldsGoIntoTheRequest() throws {
        var state = Self.state()
        let plain = try #require(Self.started(reduce(&state, .generate).effects))
        #expect(plain.parameters.variation == nil, "an empty variation seed is off")
        _ = reduce(&state, .generationStopped(error: nil))
        state.set(.variationSeed, "77")
        state.set(.variationStrength, "0.25")
        let varied = try #require(Self.started(reduce(&state, .generate).effects))
        #expect(varied.parameters.variation == VariationSeed(seed: 77, strength: 0.25))
        _ = reduce(&state, .generationStopped(error: nil))
        // The grid keeps the variation for every seed.
        let draft = try #require(Self.started(reduce(&state, .explore).effects))
        #expect(draft.parameters.variation == VariationSeed(seed: 77, strength: 0.25))
        _ = reduce(&state, .cancel)
        _ = reduce(&state, .generationStopped(error: nil))
        state.set(.variationStrength, "1.5")
        #expect(reduce(&state, .generate).effects.isEmpty)
        #expect(state.status == Status(text: "Var. str.: '1.5' must be between 0 and 1", isError: true))
        state.set(.variationStrength, "x")
        _ = reduce(&state, .generate)
        #expect(state.status.text == "Var. str.: 'x' is not a valid number")
    }

    @Test func longSeedsKeepTheirLastDigits() {
        #expect(gridLabel(101, picked: false, width: 9) == " 101 ")
        #expect(gridLabel(101, picked: true, width: 9) == "[101]")
        #expect(gridLabel(3_000_000_014, picked: false, width: 8) == " …00014 ")
        #expect(gridLabel(3_000_000_014, picked: true, width: 8) == "[…00014]")
        #expect(gridLabel(3_000_000_014, picked: false, width: 12) == " 3000000014 ")
    }

    @Test func bindings() {
        #expect(Bindings.action(for: .function(6)).map { if case .explore = $0 { true } else { false } } == true)
        #expect(Bindings.action(for: .function(7)).map { if case .cycleTheme = $0 { true } else { false } } == true)
    }

    @Test func f7CyclesThemes() {
        var state = Self.state()
        _ = reduce(&state, .cycleTheme)
        #expect(state.status.isError && state.theme == .dark)
        state.themes = [.dark, .monochrome]
        _ = reduce(&state, .cycleTheme)
        #expect(state.theme == .monochrome && state.status.text == "Theme: mono: attributes only (F7 for the next)")
        _ = reduce(&state, .cycleTheme)
        #expect(state.theme == .dark)
    }

    static func gridStates() -> [String: StudioState] {
        var running = Self.state()
        _ = reduce(&running, .explore)
        _ = Self.finish(&running, seed: 100)
        _ = reduce(&running, .engine(.step(index: 3, total: 8, sigma: 0.5, elapsed: 1, preview: Support.image)))
        var done = Self.state()
        done.draft.count = 9
        _ = reduce(&done, .explore)
        for seed in UInt64(100)..<109 { _ = Self.finish(&done, seed: seed) }
        _ = reduce(&done, .right)
        return ["explore-running": running, "explore-done": done]
    }

    @Test(arguments: ["explore-running", "explore-done"])
    func snapshot(_ name: String) throws {
        let state = Self.gridStates()[name]!
        for (columns, rows) in RenderTests.sizes { try RenderTests.checkSnapshot(name, state, columns: columns, rows: rows) }
    }
}
