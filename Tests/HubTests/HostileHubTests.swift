import Foundation
import Testing
@testable import Hub

/// A hub that lies: hostile file names and listings, bad revisions, bodies longer than listed, huge or dripping
/// answers, silence, files sharing blobs. Each case ends in one clear error within seconds, and nothing around the
/// repo's own cache folder is written or removed (`Neighbours`).
/// That each case ends is shown by the pull returning the error of the limit that stopped it: every hostile answer here
/// (an endless or dripping body, silence) never ends by itself, so a client that did not stop would run into the
/// suite's time limit. No wall-clock bound is asserted: on a loaded machine (a 2-core CI box under `stress --cpu 2`)
/// a case that ends in 2 s took 56 s, and that measured the load, not the client.
/// Serialized: the idle and low-speed limits are timers, and the other cases' load would only slow them further.
@Suite(.serialized, .timeLimit(.minutes(10))) struct HostileHubTests {
    static let repo = PullTests.repo

    static func pull(_ hub: FakeHub, cache: String, settings change: (inout HubSettings) -> Void = { _ in },
                     options: (inout PullOptions) -> Void = { _ in }, progress: PullProgress? = nil) async throws -> String {
        var settings = HubSettings(endpoint: hub.endpoint, token: FakeHub.goodToken)
        change(&settings)
        var chosen = PullOptions()
        options(&chosen)
        let pull = ModelPull(repo: hub.repo, options: chosen, settings: settings, cacheRoot: cache)
        let plan = try await pull.plan()
        return try await pull.run(plan, progress: progress ?? PullProgress(total: plan.bytesToFetch, files: plan.files.count) { _ in })
    }

    /// One line, nothing of the token, the hostile bytes escaped.
    static func expectOneLine(_ error: Error, sourceLocation: SourceLocation = #_sourceLocation) {
        let text = "\(error)"
        #expect(!text.unicodeScalars.contains { HubNames.isControl($0) }, "\(text.debugDescription)", sourceLocation: sourceLocation)
        #expect(!text.contains(FakeHub.goodToken), sourceLocation: sourceLocation)
    }

    /// A hostile string as a test argument, shown escaped in the test log (NUL and newlines would garble it).
    struct Hostile: Sendable, CustomTestStringConvertible {
        var text: String
        var testDescription: String { HubNames.shown(text) }
    }

    /// The progress line from numbers a slow or lying hub can cause: no conversion traps, the ETA gives up instead.
    @Test func theProgressLineSurvivesExtremeNumbers() {
        #expect(PullProgress.duration(1e30) == "--" && PullProgress.duration(.nan) == "--" && PullProgress.duration(.infinity) == "--")
        #expect(PullProgress.duration(-5) == "0s" && PullProgress.duration(3725) == "1h2m")
        let progress = PullProgress(total: RepoInfo.maxFileSize * 4096, files: 3) { _ in }
        progress.add(1)
        let line = progress.line(now: Date().addingTimeInterval(1e7))
        #expect(line.contains("ETA --") && line.hasSuffix("0/3 files"), "\(line)")
        progress.discard(10)
        #expect(progress.line().contains("ETA --"))
    }

    /// A body longer than the listed size (no Content-Length and endless, or announced larger) is cut at the size:
    /// nothing past it is written, and the partial file is removed.
    @Test(arguments: [nil, 10_000_000, 300_001] as [Int?])
    func aBodyLongerThanListedStopsAtTheListedSize(announced: Int?) async throws {
        let hub = try FakeHub(repo: Self.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        let weights = hub.files[2]
        hub.flood(hub.resolveRoute(weights.path), .init(contentLength: announced, total: announced))
        await #expect(throws: HubError.tooLong(file: weights.path, expected: Int64(weights.data.count))) {
            try await Self.pull(hub, cache: neighbours.cache)
        }
        let layout = CacheLayout(root: neighbours.cache, repo: Self.repo)
        #expect(!FileManager.default.fileExists(atPath: layout.incomplete(hub.sha256(weights))))
        #expect(!FileManager.default.fileExists(atPath: layout.blob(hub.sha256(weights))))
        #expect(!FileManager.default.fileExists(atPath: layout.snapshot(FakeHub.commit)))
        try neighbours.expectIntact("endless body, announced \(announced.map(String.init) ?? "nothing")")
    }

    /// A resumed download answered with a range from another offset (or none at all) is not appended: the partial
    /// file is removed, and the next pull fetches the file whole.
    @Test(arguments: ["bytes 0-299999/300000", "bytes 999-299999/300000", "bytes */300000", "", "items 1000-299999/300000"])
    func aRangeFromAnotherOffsetIsNotAppended(_ range: String) async throws {
        let hub = try FakeHub(repo: Self.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        let weights = hub.files[2]
        let layout = CacheLayout(root: neighbours.cache, repo: Self.repo)
        try FileManager.default.createDirectory(atPath: layout.folder + "/blobs", withIntermediateDirectories: true)
        try weights.data.prefix(1000).write(to: URL(fileURLWithPath: layout.incomplete(hub.sha256(weights))))
        hub.flood(hub.resolveRoute(weights.path), .init(contentLength: 299_000, total: 299_000, status: 206,
                                                        headers: range.isEmpty ? [:] : ["Content-Range": range]))
        await #expect(throws: HubError.badRange(file: weights.path, asked: 1000, got: range)) {
            try await Self.pull(hub, cache: neighbours.cache)
        }
        #expect(!FileManager.default.fileExists(atPath: layout.incomplete(hub.sha256(weights))))
        hub.calm(hub.resolveRoute(weights.path))
        _ = try await Self.pull(hub, cache: neighbours.cache)
        try PullTests.expectSnapshot(hub, root: neighbours.cache)
        #expect(hub.requests.filter { $0.path == "/cdn/" + hub.sha256(weights) }.map(\.range) == [nil])
        try neighbours.expectIntact("range \(range)")
    }

    /// A model info answer past the 16 MiB limit, announced (400 MB) or streamed without end, is refused as it comes.
    @Test(arguments: [400_000_000, nil] as [Int?])
    func aHugeModelInfoIsRefusedWithoutKeepingItWhole(announced: Int?) async throws {
        let hub = try FakeHub(repo: Self.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        hub.flood(hub.infoRoute, .init(contentLength: announced, total: nil))
        await #expect {
            try await Self.pull(hub, cache: neighbours.cache)
        } throws: { error in
            Self.expectOneLine(error)
            guard case HubError.tooLarge(let url, let limit) = error else { return false }
            return url.hasPrefix(hub.endpoint + hub.infoRoute) && limit == 16 << 20
        }
        try neighbours.expectIntact("huge model info")
    }

    /// One byte now and then keeps no transfer alive: the idle timeout (1 s here) stops it, for the model info and a
    /// file; the bytes of the file that did arrive stay, and the next pull resumes after them (they were not the
    /// file's, so the checksum then sends it whole once more).
    @Test func aDripFeedHitsTheIdleTimeout() async throws {
        let hub = try FakeHub(repo: Self.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        let quick: (inout HubSettings) -> Void = { $0.idleTimeout = 1 }
        hub.flood(hub.infoRoute, .init(contentLength: 5000, total: nil, chunk: 1, delay: 4))
        await #expect(throws: HubError.stalled(url: hub.endpoint + hub.infoRoute + "?blobs=true", seconds: 1)) {
            try await Self.pull(hub, cache: neighbours.cache, settings: quick)
        }
        hub.calm(hub.infoRoute)

        let weights = hub.files[2]
        hub.flood(hub.resolveRoute(weights.path), .init(contentLength: weights.data.count, total: nil, chunk: 1000, delay: 4))
        await #expect(throws: HubError.stalled(url: hub.endpoint + hub.resolveRoute(weights.path), seconds: 1)) {
            try await Self.pull(hub, cache: neighbours.cache, settings: quick, options: { $0.include = [weights.path] })
        }
        hub.calm(hub.resolveRoute(weights.path))
        _ = try await Self.pull(hub, cache: neighbours.cache)
        try PullTests.expectSnapshot(hub, root: neighbours.cache)
        #expect(hub.requests.filter { $0.path == "/cdn/" + hub.sha256(weights) }.map(\.range) == ["bytes=1000-", nil])
        try neighbours.expectIntact("drip")
    }

    /// A byte every 0.3 s never trips the idle timeout (1 s here), but fewer than 1000 bytes in 1.5 s is too slow:
    /// the model info and a file are both stopped; at full speed the same low-speed limit lets the whole pull through.
    @Test func aSteadyTrickleHitsTheLowSpeedLimit() async throws {
        let hub = try FakeHub(repo: Self.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        let strict: (inout HubSettings) -> Void = { $0.idleTimeout = 1; $0.slowBytes = 1000; $0.slowSeconds = 1.5 }
        let weights = hub.files[2]
        for (route, url, length) in [(hub.infoRoute, hub.endpoint + hub.infoRoute + "?blobs=true", nil),
                                     (hub.resolveRoute(weights.path), hub.endpoint + hub.resolveRoute(weights.path), weights.data.count)] {
            hub.flood(route, .init(contentLength: length, total: nil, chunk: 1, delay: 0.3))
            let started = Date()
            await #expect(throws: HubError.tooSlow(url: url, bytes: 1000, seconds: 1.5)) {
                try await Self.pull(hub, cache: neighbours.cache, settings: strict, options: { $0.include = [weights.path] })
            }
            let took = Date().timeIntervalSince(started)
            #expect(took >= 1.5, "\(route): stopped after \(took) s, before the 1.5 s the limit measures over")
            hub.calm(route)
        }
        _ = try await Self.pull(hub, cache: neighbours.cache, settings: { $0.slowBytes = 1000; $0.slowSeconds = 1.5 })
        try PullTests.expectSnapshot(hub, root: neighbours.cache)
        try neighbours.expectIntact("trickle")
    }

    /// Refusals with a body that does not end: an error status, and a 401 carrying a WWW-Authenticate challenge
    /// (FoundationNetworking turns that into an authentication challenge, which gets no credential). Each ends at once
    /// as the status's own error, whatever the body does.
    @Test(arguments: [
        (500, nil, nil), (404, nil, nil), (401, nil, nil), (401, "Bearer realm=\"hub\"", 5), (401, "Basic realm=\"hub\"", 5),
        (401, "Digest realm=\"hub\", nonce=\"1\"", 5), (401, "Bearer realm=\"hub\"", nil), (401, "Bearer", 5), (401, "Bearer", nil), (401, "", 5),
    ] as [(Int, String?, Int?)])
    func aRefusalWithAnEndlessBodyEndsAtOnce(status: Int, challenge: String?, total: Int?) async throws {
        let hub = try FakeHub(repo: Self.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        hub.flood(hub.infoRoute, .init(contentLength: nil, total: total, chunk: 1000, delay: 0.01, status: status,
                                       headers: challenge.map { ["WWW-Authenticate": $0] } ?? [:]))
        let url = hub.endpoint + hub.infoRoute + "?blobs=true"
        let expected: HubError = switch status {
        case 401: .unauthorized(repo: Self.repo, page: hub.endpoint + "/" + Self.repo, hadToken: true)
        case 404: .notFound(repo: Self.repo, revision: "main")
        default: .httpStatus(status, url: url)
        }
        await #expect(throws: expected) { try await Self.pull(hub, cache: neighbours.cache) }
        try neighbours.expectIntact("\(status) \(challenge ?? "")")
    }

    /// A hub that accepts the connection and never answers: the connect timeout (1 s here) ends the wait.
    @Test func aSilentHubHitsTheConnectTimeout() async throws {
        let hub = try FakeHub(repo: Self.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        let quick: (inout HubSettings) -> Void = { $0.connectTimeout = 1 }
        for route in [hub.infoRoute, hub.resolveRoute(hub.files[1].path)] {
            hub.silence(route)
            await #expect {
                try await Self.pull(hub, cache: neighbours.cache, settings: quick, options: { $0.include = [hub.files[1].path] })
            } throws: { error in
                Self.expectOneLine(error)
                guard case HubError.noAnswer(let url, 1) = error else { return false }
                return url.hasPrefix(hub.endpoint + route)
            }
            hub.calm(route)
        }
        try neighbours.expectIntact("silence")
    }

    /// Files with the same bytes (LFS weights, git vocabularies) are one blob each, downloaded once, linked from
    /// every path; progress counts every file.
    @Test func filesSharingABlobDownloadOnce() async throws {
        let weights = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let vocabulary = Data(#"{"a": 1, "b": 2}"#.utf8)
        let files: [FakeHub.File] = [
            .init(path: "model_index.json", data: Data("{}".utf8), lfs: false),
            .init(path: "text_encoder/model.safetensors", data: weights, lfs: true),
            .init(path: "text_encoder_2/model.safetensors", data: weights, lfs: true),
            .init(path: "tokenizer/vocab.json", data: vocabulary, lfs: false),
            .init(path: "tokenizer_2/vocab.json", data: vocabulary, lfs: false),
        ]
        let hub = try FakeHub(repo: Self.repo, files: files)
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: Self.repo)
        defer { neighbours.remove() }
        let lines = Lines()
        let pull = ModelPull(repo: Self.repo, options: PullOptions(), settings: HubSettings(endpoint: hub.endpoint, token: nil), cacheRoot: neighbours.cache)
        let plan = try await pull.plan()
        #expect(plan.bytesToFetch == Int64(2 + weights.count + vocabulary.count))
        _ = try await pull.run(plan, progress: PullProgress(total: plan.bytesToFetch, files: plan.files.count) { lines.add($0) })
        try PullTests.expectSnapshot(hub, root: neighbours.cache)
        let requests = hub.requests.map(\.path)
        #expect(requests.filter { $0.hasSuffix("/model.safetensors") }.count == 1, "\(requests)")
        #expect(requests.filter { $0 == "/cdn/" + hub.sha256(files[1]) }.count == 1, "\(requests)")
        #expect(requests.filter { $0.hasSuffix("/vocab.json") }.count == 1, "\(requests)")
        #expect(lines.last?.hasSuffix("5/5 files") == true, "\(lines.last ?? "no progress")")
        try neighbours.expectIntact("shared blobs")
    }

    /// An empty file (an `__init__.py`, an empty `.gitattributes`) is fetched like any other and linked; before, its
    /// missing `.incomplete` made the rename fail.
    @Test func anEmptyFileIsPulled() async throws {
        let files: [FakeHub.File] = [.init(path: "model_index.json", data: Data("{}".utf8), lfs: false), .init(path: "empty/__init__.py", data: Data(), lfs: false)]
        let hub = try FakeHub(repo: Self.repo, files: files)
        defer { hub.stop() }
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await Self.pull(hub, cache: root)
        try PullTests.expectSnapshot(hub, root: root)
    }
}

/// Progress lines as a pull shows them.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ line: String) { lock.withLock { lines.append(line) } }
    var last: String? { lock.withLock { lines.last } }
}
