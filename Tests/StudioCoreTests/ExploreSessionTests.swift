import Foundation
import ImageIO
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// The acceptance check of seed exploration: the studio's session explores 4 seeds, then refines one; each draft
/// is pixel-equal to `sd3 generate` with its seed at the draft settings, and the refinement to `sd3 generate` at
/// the full settings. On the tiny fixture (32×32 → 16×16 drafts) and on the demo model (64×64 → 32×32, with its
/// defaults.json: guidance 3, 32 T5 tokens, as both the studio and `sd3 generate` read it). With a TAESD3 (the tiny
/// fixture's x2 one) the drafts equal `sd3 generate --decoder taesd` and the refinement still `sd3 generate` (the VAE).
@Suite(.serialized) struct ExploreSessionTests {
    static let demoModel = Support.packageRoot + "/models/sd3-demo"
    static let prompt = "a red circle at the top left on a blue background"

    /// `sd3 generate` with no config file: the model's defaults.json, else the studio's defaults (guidance 7, 256 T5 tokens).
    static func generate(model: String, seed: UInt64, side: Int, steps: Int, folder: String, taesd: String? = nil) throws -> RGBImage {
        let output = folder + "/generate-\(seed)-\(side)-\(steps).png"
        let decoder = taesd.map { ["--decoder", "taesd", "--taesd", $0] } ?? []
        let result = run(TmuxStudio.sd3, ["generate", "--model", model, "--prompt", prompt, "-W", "\(side)", "-H", "\(side)",
                                                   "--steps", "\(steps)", "--seed", "\(seed)", "--threads", "1", "-o", output] + decoder,
                         environment: ["XDG_CONFIG_HOME": folder + "/no-config", "XDG_DATA_HOME": folder + "/data"])
        #expect(result.status == 0, "sd3 generate failed: \(result.output)")
        return try PNGFile.read(output).image
    }

    static func maxDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
        guard a.width == b.width, a.height == b.height else { return .max }
        return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    @MainActor
    @Test(.timeLimit(.minutes(10)), arguments: [(false, false), (true, false), (false, true)])
    func gridAndRefineEqualSd3Generate(demo: Bool, withTAESD: Bool) async throws {
        let taesd = withTAESD ? Support.packageRoot + "/Tests/SD3Tests/Fixtures/taesd3-x2" : nil
        let folder = Support.temporaryFolder()
        let model = demo ? Self.demoModel : Support.tinyModel
        let side = demo ? 64 : 32
        var state = StudioState(model: model, randomSeed: 1)
        state.apply(try ModelDefaults.read(model: model))
        state.set(.prompt, Self.prompt)
        state.set(.width, "\(side)")
        state.set(.height, "\(side)")
        state.set(.steps, "5")
        state.set(.seed, "40")
        if taesd != nil { state.draft.decoder = .taesd }
        let store = try StudioStore(path: folder + "/studio.sqlite")
        var config = StudioConfig(model: model, outputFolder: OutputFolder(path: folder + "/outputs"), store: .success(store), threads: 1)
        config.taesd = taesd
        let session = StudioSession(state: state, config: config)
        session.send(.explore)
        // A deadline against hangs, not a speed target: CI runs every suite at once on 2 cores.
        func failed(_ state: StudioState) -> Bool { if case .failed = state.job { true } else { false } }
        _ = await session.waitUntil(seconds: 400) { failed($0) || (!$0.isRunning && $0.explore?.finishedCount == 4) }
        let grid = try #require(session.state.explore, "the grid closed: \(session.state.status.text)")
        #expect(grid.finishedCount == 4, "\(session.state.status.text)")
        #expect(grid.draftWidth == side / 2 && grid.draftHeight == side / 2 && grid.draft.steps == 8)
        for (seed, image) in zip(grid.seeds, grid.images) {
            let reference = try Self.generate(model: model, seed: seed, side: side / 2, steps: 8, folder: folder, taesd: taesd)
            let image = try #require(image)
            #expect(image == reference, "seed \(seed): the draft differs from sd3 generate; max pixel difference \(Self.maxDifference(image, reference))")
        }
        #expect(grid.images[0] != grid.images[1], "two seeds gave the same draft")

        session.send(.right)
        session.send(.down)
        #expect(session.state.explore?.selected == 3)
        session.send(.newline)
        _ = await session.waitUntil(seconds: 400) { failed($0) || $0.current != nil }
        let saved = try #require(session.state.current, "the refinement was not saved: \(session.state.status.text)")
        #expect(saved.metadata.seed == 43 && saved.metadata.width == side && saved.metadata.steps == 5)
        let refined = try PNGFile.read(saved.file).image
        let reference = try Self.generate(model: model, seed: 43, side: side, steps: 5, folder: folder)
        #expect(refined == reference, "the refinement differs from sd3 generate; max pixel difference \(Self.maxDifference(refined, reference))")
        #expect(try store.records().count == 1, "drafts must not be saved; only the refinement")
    }
}
