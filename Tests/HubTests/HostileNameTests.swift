import Foundation
import Testing
@testable import Hub

/// What a lying hub names: file names, listings, commits, and what the user names (revisions, repo ids). Each is
/// refused with one line before any file is written, and nothing around the repo's cache folder changes.
@Suite(.timeLimit(.minutes(10))) struct HostileNameTests {
    static func sibling(_ path: String, blobId: String = String(repeating: "1", count: 40)) -> [String: Any] {
        ["rfilename": path, "size": 10, "blobId": blobId]
    }

    static let hostileNames = [
        "..\u{0}", "..\u{0}/x", "a\u{0}b", "vae/\u{0}", "a\nb", "a\rb", "a\u{1B}[2Jb", "a\u{7F}", "a\u{85}b", "a\u{2028}b", "a\tb",
        "..", ".", "../x", "a/../../x", "vae/..", "./a", "a/./b", "a//b", "vae/", "/etc/passwd", "//x",
        "C:/Windows/win.ini", "c:x", "a\\..\\..\\b", "..\\x", "", String(repeating: "a", count: 256), String(repeating: "a/", count: 600) + "b",
        // "/" then a combining mark is one grapheme cluster, not "/", for String's split and hasPrefix; the file system splits the bytes.
        "../\u{301}x", "../\u{301}../\u{301}../\u{301}evil", "a/../\u{301}x", "/\u{301}etc/passwd", "a/\u{301}/../../x",
    ]

    @Test(arguments: hostileNames.map(HostileHubTests.Hostile.init))
    func aHostileFileNameIsRefusedBeforeAnyWrite(_ hostile: HostileHubTests.Hostile) async throws {
        let name = hostile.text
        let hub = try FakeHub(repo: HostileHubTests.repo, files: [])
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: HostileHubTests.repo)
        defer { neighbours.remove() }
        hub.serveInfo(FakeHub.info(siblings: [Self.sibling("model_index.json"), Self.sibling(name, blobId: String(repeating: "2", count: 40))]))
        await #expect {
            try await HostileHubTests.pull(hub, cache: neighbours.cache)
        } throws: { error in
            HostileHubTests.expectOneLine(error)
            guard case HubError.badMetadata(_, let reason) = error else { return false }
            return reason.hasPrefix("unsafe file name '")
        }
        #expect(hub.requests.count == 1, "only the model info was asked")
        try neighbours.expectIntact(name.debugDescription)
    }

    /// Listings whose names are each fine but which cannot be one folder tree, or whose numbers are not sizes
    /// (siblings as the JSON text the hub would send).
    static let one = String(repeating: "1", count: 40), two = String(repeating: "2", count: 40)
    @Test(arguments: [
        (#"[{"rfilename": "a.json", "size": 1, "blobId": "\#(one)"}, {"rfilename": "a.json", "size": 1, "blobId": "\#(two)"}]"#, "is listed twice"),
        (#"[{"rfilename": "vae", "size": 1, "blobId": "\#(one)"}, {"rfilename": "vae/c.json", "size": 1, "blobId": "\#(two)"}]"#, "both as a file and as a folder"),
        (#"[{"rfilename": "a.json", "size": 10, "blobId": "\#(one)"}, {"rfilename": "b.json", "size": 11, "blobId": "\#(one)"}]"#, "shares its blob with a file of another size"),
        (#"[{"rfilename": "a.json", "size": -1, "blobId": "\#(one)"}]"#, "has a size of -1 bytes"),
        (#"[{"rfilename": "a.json", "size": 2199023255553, "blobId": "\#(one)"}]"#, "has a size of 2199023255553 bytes"),
        (#"[{"rfilename": "a.json", "size": 1e300, "blobId": "\#(one)"}]"#, "not the model info JSON"),
        (#"[{"rfilename": "a.json", "size": 99999999999999999999999, "blobId": "\#(one)"}]"#, "not the model info JSON"),
        (#"[{"rfilename": "a.json", "size": 2.5, "blobId": "\#(one)"}]"#, "not the model info JSON"),
        (#"[{"rfilename": "a.json", "size": "10", "blobId": "\#(one)"}]"#, "not the model info JSON"),
        (#"[{"rfilename": "a.json", "size": 1, "blobId": "../../../../etc/passwd__________________"}]"#, "has a bad blobId"),
        (#"[{"rfilename": "a.json", "size": 1, "blobId": "\#(String(repeating: "\u{FF11}", count: 40))"}]"#, "has a bad blobId"),
        (#"[{"rfilename": "a.json", "size": 1, "blobId": "\#(one)", "lfs": {"sha256": "../x", "size": 1}}]"#, "has a bad sha256"),
        (#"[{"size": 1, "blobId": "\#(one)"}]"#, "without 'rfilename'"),
        (#"[{"rfilename": "a.json", "blobId": "\#(one)"}]"#, "has no size or blobId"),
        (#"{"rfilename": "a.json"}"#, "not the model info JSON"),
        (#"null"#, "no 'siblings' list"),
    ])
    func aListingThatIsNotOneTreeIsRefused(_ siblings: String, _ expected: String) async throws {
        let hub = try FakeHub(repo: HostileHubTests.repo, files: [])
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: HostileHubTests.repo)
        defer { neighbours.remove() }
        hub.serveInfo(Data(#"{"sha": "\#(FakeHub.commit)", "siblings": \#(siblings)}"#.utf8))
        await #expect {
            try await HostileHubTests.pull(hub, cache: neighbours.cache)
        } throws: { error in
            HostileHubTests.expectOneLine(error)
            return "\(error)".contains(expected)
        }
        try neighbours.expectIntact(expected)
    }

    @Test func aCommitThatIsNotHexIsRefused() async throws {
        let hub = try FakeHub(repo: HostileHubTests.repo, files: [])
        defer { hub.stop() }
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for sha in ["../../../../x", String(repeating: "\u{FF10}", count: 40), "0123456789abcdef0123456789abcdef0123456\u{0}", ""] {
            hub.serveInfo(FakeHub.info(siblings: [], sha: sha))
            await #expect(throws: HubError.badMetadata(repo: HostileHubTests.repo, reason: "no commit hash in 'sha'")) {
                try await HostileHubTests.pull(hub, cache: root)
            }
        }
    }

    static let hostileRevisions = [
        "../../x", "..", "../../../tmp/evil", "a/../b", "/abs", "a//b", "main/", ".hidden", "refs/.x", "x.lock", "a..b",
        "main\u{0}", "main\u{0}/../../x", "main\n", "a b", "a@{1}", "a~1", "a^", "a:b", "a*", "a?", "", "ref\\x",
        String(repeating: "a", count: 256), "ma\u{0130}n",
    ]

    @Test(arguments: hostileRevisions.map(HostileHubTests.Hostile.init))
    func aBadRevisionIsRefusedBeforeAnyRequest(_ hostile: HostileHubTests.Hostile) async throws {
        let revision = hostile.text
        let hub = try FakeHub(repo: HostileHubTests.repo, files: [])
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: HostileHubTests.repo)
        defer { neighbours.remove() }
        await #expect(throws: HubError.badRevision(revision)) {
            try await HostileHubTests.pull(hub, cache: neighbours.cache, options: { $0.revision = revision })
        }
        HostileHubTests.expectOneLine(HubError.badRevision(revision))
        #expect(hub.requests.isEmpty)
        try neighbours.expectIntact(revision.debugDescription)
    }

    @Test(arguments: ["a/b/c", "../x", "org/..", "org/.x", "org/n\u{0}", "org/n\nx", "org/é", "/x", "org/", "org//x", ""].map(HostileHubTests.Hostile.init))
    func aBadRepoIDIsRefusedBeforeAnyRequest(_ hostile: HostileHubTests.Hostile) async throws {
        let repo = hostile.text
        let hub = try FakeHub(repo: HostileHubTests.repo, files: [])
        defer { hub.stop() }
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pull = ModelPull(repo: repo, options: PullOptions(), settings: HubSettings(endpoint: hub.endpoint, token: nil), cacheRoot: root + "/hub")
        await #expect(throws: HubError.badRepo(repo)) { try await pull.plan() }
        HostileHubTests.expectOneLine(HubError.badRepo(repo))
        #expect(hub.requests.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func revisionsTheHubUsesAreAccepted() async throws {
        for revision in ["main", "v1.0", "refs/pr/12", "release-2024_01", "fp16", FakeHub.commit, FakeHub.commit.uppercased()] {
            #expect(HubNames.isRevision(revision), "\(revision)")
        }
        let hub = try FakeHub(repo: HostileHubTests.repo, files: PullTests.files())
        defer { hub.stop() }
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await HostileHubTests.pull(hub, cache: root, options: { $0.revision = "refs/pr/1" })
        let ref = CacheLayout(root: root, repo: HostileHubTests.repo).folder + "/refs/refs/pr/1"
        #expect(try String(contentsOfFile: ref, encoding: .utf8) == FakeHub.commit)
    }
}
