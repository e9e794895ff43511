import Foundation
import ImageIO
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// The acceptance check of seed exploration: the studio's session explores 4 seeds, then refines one; each draft
/// is pixel-equal to `sd3 generate` with its seed at the draft settings, and the refinement to `sd3 generate` at
/// the full settings. On the tiny fixture (32×32 drafts of 8 steps, 10-step refinement) and on the demo model (64×64, with its
/// defaults.json: guidance 3, 32 T5 tokens, as both the studio and `sd3 generate` read it). With a TAESD3 (the tiny
/// fixture's x2 one) the drafts equal `sd3 generate --decoder taesd` and the refinement still `sd3 generate` (the VAE).
@Suite(.serialized) struct ExploreSessionTests {
    static let demoModel = Support.packageRoot + "/models/sd3-demo"
    static let prompt = "a red circle at the top left on a blue background"

    /// `sd3 generate` with no config file: the model's defaults.json, else the studio's defaults (guidance 7, 256 T5 tokens).
    static func generate(model: String, seed: UInt64, side: Int, steps: Int, folder: String, taesd: String? = nil,
                         prompt: String = Self.prompt) throws -> RGBImage {
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

    /// The shape's pixels of a demo image, resampled (nearest) to 64×64: farther than 80 (RGB distance) from the
    /// background, the per-channel median of the 2-pixel ring (scripts/demo-model/evaluate.py reads the background
    /// the same way; its palette's colours are at least 100 apart).
    static func foreground(_ image: RGBImage) -> [Bool] {
        func pixel(_ x: Int, _ y: Int) -> (Int, Int, Int) {
            let p = image[x * image.width / 64, y * image.height / 64]
            return (Int(p.0), Int(p.1), Int(p.2))
        }
        let ring = (0..<64).flatMap { i in [(i, 0), (i, 1), (i, 62), (i, 63), (0, i), (1, i), (62, i), (63, i)] }.map { pixel($0.0, $0.1) }
        func median(_ values: [Int]) -> Int { values.sorted()[values.count / 2] }
        let background = (median(ring.map(\.0)), median(ring.map(\.1)), median(ring.map(\.2)))
        return (0..<64 * 64).map { i in
            let p = pixel(i % 64, i / 64)
            let (dr, dg, db) = (p.0 - background.0, p.1 - background.1, p.2 - background.2)
            return dr * dr + dg * dg + db * db > 80 * 80
        }
    }

    /// The centroid of a 64×64 mask, nil when it is empty.
    static func centroid(_ mask: [Bool]) -> (x: Double, y: Double)? {
        let points = mask.indices.filter { mask[$0] }
        guard !points.isEmpty else { return nil }
        let n = Double(points.count)
        return (points.map { Double($0 % 64) }.reduce(0, +) / n, points.map { Double($0 / 64) }.reduce(0, +) / n)
    }

    /// Seed exploration's promise (docs/studio.md, Seed exploration): the draft of a seed looks like its refinement.
    /// On the demo model, with a prompt that leaves the position to the seed, the studio's 4 drafts (its default
    /// draft settings) and each seed's refinement (`sd3 generate` at the full settings: the refinement equals it,
    /// above) have their shapes in the same place with the same extent: centroids within 6 pixels of 64, shape masks
    /// overlapping with IoU ≥ 0.5. Half-size drafts (the studio's before) put a wedge in a corner where the
    /// refinement has the shape elsewhere.
    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func draftsPredictTheRefinementsComposition() async throws {
        let folder = Support.temporaryFolder()
        let prompt = "a yellow triangle on a purple background"
        var state = StudioState(model: Self.demoModel, randomSeed: 1)
        state.apply(try ModelDefaults.read(model: Self.demoModel))
        state.set(.prompt, prompt)
        state.set(.seed, "40")
        let full = try #require(Int(state.text(.steps)))
        let store = try StudioStore(path: folder + "/studio.sqlite")
        let config = StudioConfig(model: Self.demoModel, outputFolder: OutputFolder(path: folder + "/outputs"), store: .success(store), threads: 1)
        let session = StudioSession(state: state, config: config)
        session.send(.explore)
        func failed(_ state: StudioState) -> Bool { if case .failed = state.job { true } else { false } }
        _ = await session.waitUntil(seconds: 400) { failed($0) || (!$0.isRunning && $0.explore?.finishedCount == 4) }
        let grid = try #require(session.state.explore, "the grid closed: \(session.state.status.text)")
        #expect(grid.draftSteps < full, "the drafts must be quicker than the refinement: \(grid.draftSteps) of \(full) steps")
        var centres: [(x: Double, y: Double)] = []
        for (seed, draft) in zip(grid.seeds, grid.images) {
            let draft = try #require(draft)
            let refined = try Self.generate(model: Self.demoModel, seed: seed, side: 64, steps: full, folder: folder, prompt: prompt)
            let (a, b) = (Self.foreground(draft), Self.foreground(refined))
            let (ca, cb) = (try #require(Self.centroid(a), "seed \(seed): no shape in the draft"), try #require(Self.centroid(b), "seed \(seed): no shape in the refinement"))
            let distance = ((ca.x - cb.x) * (ca.x - cb.x) + (ca.y - cb.y) * (ca.y - cb.y)).squareRoot()
            let iou = Double(zip(a, b).filter { $0 && $1 }.count) / Double(max(1, zip(a, b).filter { $0 || $1 }.count))
            #expect(distance <= 6 && iou >= 0.5, "seed \(seed): the draft's shape is \(distance) px from the refinement's, mask IoU \(iou)")
            centres.append(cb)
        }
        // The prompt leaves the position to the seed: the refinements are not all in one place (else the check above
        // would not tell a draft that follows its seed from one that ignores it).
        #expect(Set(centres.map { "\(Int($0.x / 64 * 3)),\(Int($0.y / 64 * 3))" }).count >= 2, "every seed put the shape in the same cell: \(centres)")
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
        state.set(.steps, "10")
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
        #expect(grid.draftWidth == side && grid.draftHeight == side && grid.draftSteps == 8)
        for (seed, image) in zip(grid.seeds, grid.images) {
            let reference = try Self.generate(model: model, seed: seed, side: side, steps: 8, folder: folder, taesd: taesd)
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
        #expect(saved.metadata.seed == 43 && saved.metadata.width == side && saved.metadata.steps == 10)
        let refined = try PNGFile.read(saved.file).image
        let reference = try Self.generate(model: model, seed: 43, side: side, steps: 10, folder: folder)
        #expect(refined == reference, "the refinement differs from sd3 generate; max pixel difference \(Self.maxDifference(refined, reference))")
        #expect(try store.records().count == 1, "drafts must not be saved; only the refinement")
    }
}
