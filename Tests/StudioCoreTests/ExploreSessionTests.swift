import Foundation
import ImageIO
import SD3
@testable import StudioCore
import Testing

/// The acceptance check of seed exploration: the studio's session explores 4 seeds on the tiny model, then
/// refines one; each draft is pixel-equal to `sd3 generate` with its seed at the draft settings, and the
/// refinement to `sd3 generate` at the full settings.
@Suite(.serialized) struct ExploreSessionTests {
    /// `sd3 generate` with the studio's defaults for the tiny model (guidance 7, 256 T5 tokens, no config file).
    static func generate(seed: UInt64, side: Int, steps: Int, folder: String) throws -> RGBImage {
        let output = folder + "/generate-\(seed)-\(side)-\(steps).png"
        let result = run(StudioEndToEndTests.sd3, ["generate", "--model", Support.tinyModel, "--prompt", "a red circle", "-W", "\(side)", "-H", "\(side)",
                                                   "--steps", "\(steps)", "--seed", "\(seed)", "--threads", "1", "-o", output],
                         environment: ["XDG_CONFIG_HOME": folder + "/no-config"])
        #expect(result.status == 0, "sd3 generate failed: \(result.output)")
        return try PNGFile.read(output).image
    }

    static func maxDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
        guard a.width == b.width, a.height == b.height else { return .max }
        return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    @MainActor
    @Test(.timeLimit(.minutes(3)))
    func gridAndRefineEqualSd3Generate() async throws {
        let folder = Support.temporaryFolder()
        var state = StudioState(model: Support.tinyModel, randomSeed: 1)
        state.set(.prompt, "a red circle")
        state.set(.width, "32")
        state.set(.height, "32")
        state.set(.steps, "5")
        state.set(.seed, "40")
        let config = StudioConfig(model: Support.tinyModel, outputFolder: OutputFolder(path: folder + "/outputs"),
                                  history: HistoryStore(path: folder + "/history.jsonl"), threads: 1)
        let session = StudioSession(state: state, config: config)
        session.send(.explore)
        let deadline = Date().addingTimeInterval(120)
        while session.state.isRunning || session.state.explore?.finishedCount != 4, Date() < deadline {
            if case .failed = session.state.job { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let grid = try #require(session.state.explore, "the grid closed: \(session.state.status.text)")
        #expect(grid.finishedCount == 4, "\(session.state.status.text)")
        #expect(grid.draftWidth == 16 && grid.draftHeight == 16 && grid.draft.steps == 8)
        for (seed, image) in zip(grid.seeds, grid.images) {
            let reference = try Self.generate(seed: seed, side: 16, steps: 8, folder: folder)
            let image = try #require(image)
            #expect(image == reference, "seed \(seed): the draft differs from sd3 generate; max pixel difference \(Self.maxDifference(image, reference))")
        }
        #expect(grid.images[0] != grid.images[1], "two seeds gave the same draft")

        session.send(.right)
        session.send(.down)
        #expect(session.state.explore?.selected == 3)
        session.send(.newline)
        while session.state.current == nil, Date() < deadline {
            if case .failed = session.state.job { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let saved = try #require(session.state.current, "the refinement was not saved: \(session.state.status.text)")
        #expect(saved.metadata.seed == 43 && saved.metadata.width == 32 && saved.metadata.steps == 5)
        let refined = try PNGFile.read(saved.file).image
        let reference = try Self.generate(seed: 43, side: 32, steps: 5, folder: folder)
        #expect(refined == reference, "the refinement differs from sd3 generate; max pixel difference \(Self.maxDifference(refined, reference))")
        #expect(try config.history.records().count == 1, "drafts must not be saved; only the refinement")
    }
}
