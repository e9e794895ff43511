import Foundation
import SD3
import Testing
@testable import Hub

/// `sd3 models pull` against the loopback hub: the cache it writes, resuming, checksums, and the errors users meet.
@Suite struct PullTests {
    static let repo = "test-org/tiny-sd3-diffusers"

    /// A diffusers-shaped repo: small JSON files stored in git, weights in LFS, a T5 encoder to skip.
    static func files() -> [FakeHub.File] {
        func random(_ count: Int) -> Data { Data((0..<count).map { _ in UInt8.random(in: 0...255) }) }
        return [
            .init(path: "model_index.json", data: Data(#"{"_class_name": "StableDiffusion3Pipeline"}"#.utf8), lfs: false),
            .init(path: "transformer/config.json", data: Data(#"{"num_layers": 2}"#.utf8), lfs: false),
            .init(path: "transformer/diffusion_pytorch_model.safetensors", data: random(300_000), lfs: true),
            .init(path: "vae/diffusion_pytorch_model.safetensors", data: random(120_000), lfs: true),
            .init(path: "text_encoder_3/model.safetensors", data: random(60_000), lfs: true),
            .init(path: "tokenizer_3/tokenizer.json", data: Data(#"{"model": {"type": "Unigram"}}"#.utf8), lfs: false),
        ]
    }

    static func temporaryRoot() -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sd3-pull-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    static func pull(_ hub: FakeHub, root: String, token: String? = FakeHub.goodToken, configure: (inout PullOptions) -> Void = { _ in }) async throws -> String {
        var options = PullOptions()
        configure(&options)
        let pull = ModelPull(repo: hub.repo, options: options, settings: HubSettings(endpoint: hub.endpoint, token: token), cacheRoot: root)
        let plan = try await pull.plan()
        return try await pull.run(plan, progress: PullProgress(total: plan.bytesToFetch, files: plan.files.count) { _ in })
    }

    /// Every served file is in the snapshot, byte for byte, as a relative link into blobs/ named by its hash.
    static func expectSnapshot(_ hub: FakeHub, root: String, skipping skipped: (String) -> Bool = { _ in false }) throws {
        let snapshot = try #require(HuggingFaceCache(roots: [root]).snapshot(repo: hub.repo), "HuggingFaceCache finds no snapshot under \(root)")
        #expect(snapshot.hasSuffix("/snapshots/" + FakeHub.commit))
        for file in hub.files {
            let path = snapshot + "/" + file.path
            if skipped(file.path) { #expect(!FileManager.default.fileExists(atPath: path), "\(file.path) should be skipped"); continue }
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: path)
            let depth = file.path.split(separator: "/").count - 1
            #expect(target.hasPrefix(String(repeating: "../", count: depth + 2) + "blobs/"), "\(file.path) -> \(target)")
            if file.lfs { #expect(target.hasSuffix("/" + hub.sha256(file))) }
            let read = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(read == file.data, "\(file.path): \(read.count) bytes read, \(file.data.count) served")
        }
        let folder = CacheLayout(root: root, repo: hub.repo).folder
        #expect(try String(contentsOfFile: folder + "/refs/main", encoding: .utf8) == FakeHub.commit)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder + "/blobs").filter { $0.hasSuffix(".incomplete") }
        #expect(leftovers.isEmpty, "left behind: \(leftovers)")
    }

    @Test func fullPullWritesTheHubCacheLayout() async throws {
        let hub = try FakeHub(repo: Self.repo, files: Self.files(), gated: true)
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let snapshot = try await Self.pull(hub, root: root)
        #expect(snapshot == CacheLayout(root: root, repo: hub.repo).snapshot(FakeHub.commit))
        try Self.expectSnapshot(hub, root: root)
        // The token goes to the hub, never to the CDN the LFS files are redirected to.
        let requests = hub.requests
        #expect(requests.filter { $0.path.hasPrefix("/cdn/") }.count == 3)
        #expect(requests.filter { $0.path.hasPrefix("/cdn/") }.allSatisfy { $0.authorization == nil })
        #expect(requests.filter { !$0.path.hasPrefix("/cdn/") }.allSatisfy { $0.authorization == "Bearer " + FakeHub.goodToken })
        // A second pull finds everything cached and fetches nothing.
        let before = hub.requests.count
        _ = try await Self.pull(hub, root: root)
        #expect(hub.requests.count == before + 1, "only the model info is asked again")
    }

    /// A pull cancelled at any moment, redirects to the CDN included, ends with its cancellation and never takes the
    /// process down: FoundationNetworking traps when a task is cancelled while a redirect waits for the delegate or
    /// as the transfer ends, which is what a CI run once died of. The moments sweep 0–12 ms; a last pull completes.
    @Test func cancellingAtAnyMomentEndsThePullAndNothingElse() async throws {
        let hub = try FakeHub(repo: Self.repo, files: Self.files())
        defer { hub.stop() }
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pull = ModelPull(repo: hub.repo, options: PullOptions(), settings: HubSettings(endpoint: hub.endpoint, token: FakeHub.goodToken), cacheRoot: root)
        let plan = try await pull.plan()
        for round in 0..<48 {
            // Each round starts from nothing, so every round makes its redirects again.
            try? FileManager.default.removeItem(atPath: CacheLayout(root: root, repo: hub.repo).folder)
            let running = Task { try await pull.run(plan, progress: PullProgress(total: plan.bytesToFetch, files: plan.files.count) { _ in }) }
            try await Task.sleep(for: .microseconds(250 * round))
            running.cancel()
            switch await running.result {
            case .success: break  // finished before the cancel
            case .failure(let error): #expect(error is CancellationError, "round \(round): \(error)")
            }
        }
        let fresh = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: fresh) }
        _ = try await Self.pull(hub, root: fresh)
        try Self.expectSnapshot(hub, root: fresh)
    }

    @Test func noT5AndIncludeChooseTheFiles() async throws {
        let hub = try FakeHub(repo: Self.repo, files: Self.files())
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await Self.pull(hub, root: root, token: nil) { $0.skipT5 = true }
        try Self.expectSnapshot(hub, root: root) { $0.hasPrefix("text_encoder_3/") || $0.hasPrefix("tokenizer_3/") }

        let vaeOnly = Self.temporaryRoot()

        defer { try? FileManager.default.removeItem(atPath: vaeOnly) }
        _ = try await Self.pull(hub, root: vaeOnly, token: nil) { $0.include = ["vae/", "*.json"] }
        try Self.expectSnapshot(hub, root: vaeOnly) { $0.hasPrefix("transformer/") && $0.hasSuffix(".safetensors") || $0.hasPrefix("text_encoder_3/") }
    }

    @Test(arguments: 0..<3) func interruptedPullResumesWithRange(_ round: Int) async throws {
        let hub = try FakeHub(repo: Self.repo, files: Self.files())
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let big = hub.files[2]
        let cutAt = Int.random(in: 1..<big.data.count - 1)
        hub.cut(big.path, after: cutAt)
        await #expect(throws: HubError.interrupted(file: big.path, have: Int64(cutAt), expected: Int64(big.data.count))) {
            try await Self.pull(hub, root: root)
        }
        let partial = CacheLayout(root: root, repo: hub.repo).incomplete(hub.sha256(big))
        let kept = try Data(contentsOf: URL(fileURLWithPath: partial))
        #expect(kept.count == cutAt, "round \(round): cut at \(cutAt), kept \(kept.count)")
        #expect(kept == big.data.prefix(kept.count))

        _ = try await Self.pull(hub, root: root)
        try Self.expectSnapshot(hub, root: root)
        let ranges = hub.requests.filter { $0.path.hasPrefix("/cdn/" + hub.sha256(big)) }.map(\.range)
        #expect(ranges == [nil, "bytes=\(cutAt)-"], "round \(round): \(ranges)")
    }

    @Test func corruptedTransferIsCaughtRemovedAndRetriedOnce() async throws {
        let hub = try FakeHub(repo: Self.repo, files: Self.files())
        let vae = hub.files[3]
        hub.corrupt(vae.path, times: 1)
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await Self.pull(hub, root: root)
        try Self.expectSnapshot(hub, root: root)
        #expect(hub.requests.filter { $0.path.hasPrefix("/cdn/" + hub.sha256(vae)) }.count == 2)

        hub.corrupt(vae.path, times: 2)
        let again = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: again) }
        await #expect {
            try await Self.pull(hub, root: again)
        } throws: { error in
            guard case HubError.checksumMismatch(let file, let expected, _) = error else { return false }
            return file == vae.path && expected == hub.sha256(vae)
        }
        let layout = CacheLayout(root: again, repo: hub.repo)
        #expect(!FileManager.default.fileExists(atPath: layout.blob(hub.sha256(vae))))
        #expect(!FileManager.default.fileExists(atPath: layout.incomplete(hub.sha256(vae))))
    }

    @Test func gatedMissingAndUnreachableReposGiveClearErrors() async throws {
        let hub = try FakeHub(repo: Self.repo, files: Self.files(), gated: true)
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let page = hub.endpoint + "/" + Self.repo
        await #expect(throws: HubError.unauthorized(repo: Self.repo, page: page, hadToken: false)) { try await Self.pull(hub, root: root, token: nil) }
        await #expect(throws: HubError.unauthorized(repo: Self.repo, page: page, hadToken: true)) { try await Self.pull(hub, root: root, token: "hf_wrong") }
        await #expect(throws: HubError.forbidden(repo: Self.repo, page: page)) { try await Self.pull(hub, root: root, token: FakeHub.unlicensedToken) }
        #expect(HubError.unauthorized(repo: Self.repo, page: page, hadToken: false).description.contains(page))

        let missing = try FakeHub(repo: "test-org/other", files: [])
        let settings = HubSettings(endpoint: missing.endpoint, token: nil)
        await #expect(throws: HubError.notFound(repo: Self.repo, revision: "main")) {
            _ = try await ModelPull(repo: Self.repo, options: PullOptions(), settings: settings, cacheRoot: root).plan()
        }
        let port = missing.port
        missing.stop()
        let closed = HubSettings(endpoint: "http://127.0.0.1:\(port)", token: nil)
        await #expect {
            _ = try await ModelPull(repo: Self.repo, options: PullOptions(), settings: closed, cacheRoot: root).plan()
        } throws: { error in
            guard case HubError.network = error else { return false }
            return true
        }
    }

    @Test func fullDiskIsRefusedBeforeAnyDownload() async throws {
        let hub = try FakeHub(repo: Self.repo, files: Self.files())
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pull = ModelPull(repo: hub.repo, options: PullOptions(), settings: HubSettings(endpoint: hub.endpoint, token: nil), cacheRoot: root)
        let plan = try await pull.plan()
        #expect(plan.bytesToFetch == Int64(hub.files.reduce(0) { $0 + $1.data.count }))
        #expect(throws: HubError.diskFull(needed: plan.bytesToFetch, free: 1000, folder: "/cache")) { try plan.checkSpace(free: 1000, folder: "/cache") }
        try plan.checkSpace(free: plan.bytesToFetch, folder: "/cache")
    }
}
