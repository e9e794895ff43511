import Foundation
import Hub
import ImageIO
import PollSupport
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// The studio's model picker pulls a repo id that is not cached, against the loopback hub serving the tiny fixture
/// model: progress in the status line, Esc cancels (the bytes stay), pulling again resumes, and the pulled model is
/// listed, switched to and draws the same image as the folder it was served from.
@Suite(.serialized) struct StudioPullTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let tinyModel = packageRoot + "/Tests/SD3Tests/Fixtures/tiny-sd3"
    static let repo = "test-org/tiny-sd3"
    static let stalled = "transformer/diffusion_pytorch_model.safetensors"

    /// The fixture folder as hub files: weights in LFS (redirected to the fake CDN), configs and tokenizers in git.
    static func files() throws -> [FakeHub.File] {
        let paths = FileManager.default.enumerator(atPath: tinyModel)!.compactMap { $0 as? String }.sorted().filter { path in
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: tinyModel + "/" + path, isDirectory: &isFolder)
            return !isFolder.boolValue
        }
        return try paths.map { .init(path: $0, data: try Data(contentsOf: URL(fileURLWithPath: tinyModel + "/" + $0)), lfs: $0.hasSuffix(".safetensors")) }
    }

    @MainActor
    static func session(model: String, folder: String, hub: FakeHub, cache: String, side: Int = 32) throws -> StudioSession {
        var state = StudioState(model: model, randomSeed: 1)
        // As `sd3 studio -p … --steps 3 --seed 5` starts it on a model whose defaults are side × side.
        var defaults = SettingsLayer(), flags = SettingsLayer()
        (defaults.width, defaults.height) = (side, side)
        (flags.prompt, flags.steps, flags.seed) = ("a red circle at the top left on a blue background", 3, 5)
        state.apply(GenerationSettings([.init(.model, model, defaults), .init(.given, "flags", flags)]))
        state.maxSequenceLength = 32
        let config = StudioConfig(model: model, outputFolder: OutputFolder(path: folder + "/outputs"),
                                  store: .success(try StudioStore(path: folder + "/studio.sqlite")), threads: 1, loraFolders: [],
                                  hub: HubSettings(endpoint: hub.endpoint, token: nil), hubCache: HuggingFaceCache(roots: [cache]))
        return StudioSession(state: state, config: config)
    }

    @MainActor
    static func wait(_ session: StudioSession, _ what: String, seconds: Double = 300, _ condition: @escaping (StudioState) -> Bool) async throws {
        // The deadline is against hangs: CI runs every suite at once on 2 cores.
        let reached = await session.waitUntil(seconds: seconds, condition)
        try #require(reached, "timed out waiting for \(what): \(session.state.status.text)")
    }

    @MainActor
    static func generate(_ session: StudioSession) async throws -> HistoryRecord {
        let before = session.state.current?.id  // the new image, not the one on screen before it
        session.send(.generate)
        try #require(session.state.isRunning, "\(session.state.status.text)")
        try await wait(session, "the image") { state in
            if case .failed = state.job { return true }
            return !state.isRunning && state.current != nil && state.current?.id != before && state.current?.metadata.seed == 5
        }
        return try #require(session.state.current, "\(session.state.status.text)")
    }

    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func pullCancelResumeSwitchAndGenerate() async throws {
        let hub = try FakeHub(repo: Self.repo, files: try Self.files())
        defer { hub.release(); hub.stop() }
        let folder = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = folder + "/hub"
        let session = try Self.session(model: Self.tinyModel, folder: folder, hub: hub, cache: cache)
        hub.stall(Self.stalled)

        session.send(Bindings.action(for: .function(8))!)
        try await Self.wait(session, "the model list") { $0.models?.entries != nil }
        for c in Self.repo { session.send(.insert(String(c))) }
        #expect(session.state.models?.pullable == Self.repo && session.state.models?.shown.isEmpty == true)
        #expect(render(session.state, columns: 100, rows: 30).lines.joined(separator: "\n").contains("⇣ pull test-org/tiny-sd3 from the Hugging Face Hub"))
        session.send(.newline)
        #expect(session.state.pull == PullJob(repo: Self.repo))

        // The transformer's transfer hangs half-way: the status line shows bytes, rate, ETA and files meanwhile.
        let transformer = try Self.files().first { $0.path == Self.stalled }!
        let blob = CacheLayout(root: cache, repo: Self.repo).incomplete(hub.sha256(transformer))
        // A file on disk, not the session's state: no action may follow its last byte, so this one is polled.
        await Poll.until(seconds: 300, every: 0.02) { (try? FileManager.default.attributesOfItem(atPath: blob)[.size] as? Int) == transformer.data.count / 2 }
        try #require((try? FileManager.default.attributesOfItem(atPath: blob)[.size] as? Int) == transformer.data.count / 2,
                     "timed out waiting for half the transformer: \(session.state.status.text)")
        try await Self.wait(session, "a progress line") { $0.pull?.progress.contains("files") == true }
        let statusLine = try #require(render(session.state, columns: 100, rows: 30).lines.last)
        // Files with the same bytes (the two CLIP tokenizers' vocabularies, …) share a blob, fetched and counted once.
        let distinct = Dictionary(try Self.files().map { (hub.sha256($0), $0.data.count) }) { first, _ in first }.values.reduce(0, +)
        #expect(statusLine.hasPrefix("⇣ ") && statusLine.contains(" / \(PullProgress.bytes(Int64(distinct)))  ") && statusLine.contains(" MB  ")
                && statusLine.contains("/s  ETA ") && statusLine.hasSuffix(" files · test-org/tiny-sd3 · Esc cancels"), "\(statusLine)")

        // Esc closes the picker (the typed id first), then cancels the pull; the half file stays for the next pull.
        session.send(.cancel)
        session.send(.cancel)
        #expect(session.state.models == nil && session.state.pull != nil)
        session.send(.cancel)
        #expect(session.state.pull?.cancelling == true)
        try await Self.wait(session, "the cancelled pull") { $0.pull == nil }
        #expect(session.state.status == Status(text: "Pull of test-org/tiny-sd3 cancelled: what arrived is kept, pull it again to resume", isError: false))
        #expect((try? FileManager.default.attributesOfItem(atPath: blob)[.size] as? Int) == transformer.data.count / 2)
        #expect(HuggingFaceCache(roots: [cache]).snapshot(repo: Self.repo) == nil, "a cancelled pull writes no snapshot")

        // Pulling again resumes with a range request and lists the model, picked; Enter switches to it.
        session.send(Bindings.action(for: .function(8))!)
        try await Self.wait(session, "the model list") { $0.models?.entries != nil }
        for c in Self.repo { session.send(.insert(String(c))) }
        session.send(.newline)
        try await Self.wait(session, "the pull") { $0.pull == nil }
        #expect(session.state.status.text.hasPrefix("Pulled test-org/tiny-sd3 into \(cache)/models--test-org--tiny-sd3/snapshots/\(FakeHub.commit)"),
                "\(session.state.status.text)")
        #expect(hub.requests.contains { $0.path == "/cdn/" + hub.sha256(transformer) && $0.range == "bytes=\(transformer.data.count / 2)-" },
                "the second pull did not resume the transformer")
        try await Self.wait(session, "the new entry") { $0.models?.entries?.contains { $0.entry.model == Self.repo } == true }
        session.send(.cancel)  // clears the typed id: the whole list, the pulled model still picked
        let picked = try #require(session.state.models?.shown[safe: session.state.models?.selected ?? -1])
        #expect(picked.entry.model == Self.repo && picked.entry.layout == "Hugging Face cache (diffusers)" && picked.entry.problem == nil)
        session.send(.newline)
        #expect(session.state.model == Self.repo && session.state.models == nil)
        // The switch starts the size from the model, as diffusers does: sample_size 32 × vae_scale_factor 2.
        #expect(session.state.text(.width) == "64" && session.state.text(.height) == "64")

        let pulled = try await Self.generate(session)
        #expect(pulled.metadata.modelPath == Self.repo && pulled.metadata.model == "tiny-sd3")
        let again = try await Self.generate(session)
        #expect(await session.engine.loadCount == 1, "a repo id model reloaded between images")
        #expect(pulled.id != again.id)

        try FileManager.default.createDirectory(atPath: folder + "/plain", withIntermediateDirectories: true)
        let plain = try Self.session(model: Self.tinyModel, folder: folder + "/plain", hub: hub, cache: cache, side: 64)
        let reference = try await Self.generate(plain)
        let (a, b) = (try PNGFile.read(pulled.file).image, try PNGFile.read(reference.file).image)
        #expect(a == b, "the pulled model draws another image than its folder; max difference \(zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? -1)")
    }

    /// A repo the hub does not have: the pull stops with the hub's one-line message in the status line.
    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func aMissingRepoIsAOneLineError() async throws {
        let hub = try FakeHub(repo: Self.repo, files: [])
        defer { hub.stop() }
        let folder = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let session = try Self.session(model: Self.tinyModel, folder: folder, hub: hub, cache: folder + "/hub")
        session.send(Bindings.action(for: .function(8))!)
        try await Self.wait(session, "the model list") { $0.models?.entries != nil }
        for c in "test-org/absent" { session.send(.insert(String(c))) }
        session.send(.newline)
        try await Self.wait(session, "the failure") { $0.pull == nil }
        #expect(session.state.status == Status(text: "Pull of test-org/absent: repository test-org/absent (revision main) not found on the hub (404): check the id, or pass a token if it is private",
                                               isError: true))
    }
}
