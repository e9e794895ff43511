import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import Hub

/// The token goes to the endpoint's origin (scheme, host, port) and nowhere else, whatever the hub redirects to:
/// each case is a real pull through URLSession (libcurl on Linux) against two loopback hubs, and the hubs' own logs
/// say which requests carried the header.
@Suite(.timeLimit(.minutes(10))) struct RedirectTests {
    static let bearer = "Bearer " + FakeHub.goodToken

    /// The endpoint hub and another one on another port serving the same repo.
    static func hubs() throws -> (FakeHub, FakeHub) {
        let files = PullTests.files()
        return (try FakeHub(repo: PullTests.repo, files: files), try FakeHub(repo: PullTests.repo, files: files))
    }

    static func infoAt(_ base: String) -> String { base + "/api/models/\(PullTests.repo)/revision/\(FakeHub.commit)?blobs=true" }
    static var infoByCommit: String { "/api/models/\(PullTests.repo)/revision/\(FakeHub.commit)" }

    @Test(arguments: [301, 302, 303, 307, 308])
    func modelInfoRedirectedToAnotherPortGoesWithoutTheToken(_ status: Int) async throws {
        let (hub, other) = try Self.hubs()
        defer { hub.stop(); other.stop() }
        hub.redirect(hub.infoRoute, to: Self.infoAt(other.endpoint), status: status)
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await PullTests.pull(hub, root: root)
        try PullTests.expectSnapshot(hub, root: root)
        let reached = other.requests
        #expect(reached.count == 1 && reached[0].path.hasPrefix(Self.infoByCommit), "\(reached.map(\.path))")
        #expect(reached.allSatisfy { $0.authorization == nil }, "the token went to port \(other.port) after a \(status)")
        #expect(hub.requests.filter { $0.path.hasPrefix("/api/") }.allSatisfy { $0.authorization == Self.bearer })
    }

    @Test func localhostIsAnotherHostThan127001() async throws {
        let (hub, other) = try Self.hubs()
        defer { hub.stop(); other.stop() }
        hub.redirect(hub.infoRoute, to: Self.infoAt("http://localhost:\(hub.port)"))
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await PullTests.pull(hub, root: root)
        let redirected = hub.requests.filter { $0.path.hasPrefix(Self.infoByCommit) }
        #expect(redirected.count == 1 && redirected[0].host == "localhost:\(hub.port)", "\(redirected)")
        #expect(redirected.allSatisfy { $0.authorization == nil })
    }

    /// The control that shows the logs can see the header: a redirect within the origin, absolute or relative, keeps it.
    @Test(arguments: [true, false])
    func aRedirectWithinTheOriginKeepsTheToken(absolute: Bool) async throws {
        let (hub, other) = try Self.hubs()
        defer { hub.stop(); other.stop() }
        hub.redirect(hub.infoRoute, to: absolute ? Self.infoAt(hub.endpoint) : Self.infoAt(""), status: 307)
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await PullTests.pull(hub, root: root)
        let redirected = hub.requests.filter { $0.path.hasPrefix(Self.infoByCommit) }
        #expect(redirected.count == 1 && redirected.allSatisfy { $0.authorization == Self.bearer }, "\(redirected)")
    }

    /// Once a hop has left the origin, the header is not added back when the chain returns to it.
    @Test func aChainBackToTheOriginStaysWithoutTheToken() async throws {
        let (hub, other) = try Self.hubs()
        defer { hub.stop(); other.stop() }
        hub.redirect(hub.infoRoute, to: "http://localhost:\(hub.port)/hop")
        hub.redirect("/hop", to: Self.infoAt(hub.endpoint))
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await PullTests.pull(hub, root: root)
        let hops = hub.requests.filter { $0.path == "/hop" || $0.path.hasPrefix(Self.infoByCommit) }
        #expect(hops.count == 2 && hops.allSatisfy { $0.authorization == nil }, "\(hops)")
    }

    /// A file in git redirected to another port, and an LFS file whose "CDN" is on another port, cut half-way and
    /// resumed there with a Range request: neither transfer carries the token, the Range survives the redirect.
    @Test func downloadsAndRangeRequestsRedirectedElsewhereGoWithoutTheToken() async throws {
        let (hub, other) = try Self.hubs()
        defer { hub.stop(); other.stop() }
        let config = hub.files[0], weights = hub.files[2]
        hub.redirect(hub.resolveRoute(config.path), to: other.endpoint + other.resolveRoute(config.path))
        hub.redirect(hub.resolveRoute(weights.path), to: other.endpoint + "/cdn/" + hub.sha256(weights))
        other.cut(weights.path, after: 100_000)
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        await #expect(throws: HubError.interrupted(file: weights.path, have: 100_000, expected: Int64(weights.data.count))) {
            try await PullTests.pull(hub, root: root)
        }
        _ = try await PullTests.pull(hub, root: root)
        try PullTests.expectSnapshot(hub, root: root)
        let elsewhere = other.requests
        #expect(elsewhere.filter { $0.path == other.resolveRoute(config.path) }.count >= 1)
        #expect(elsewhere.filter { $0.path == "/cdn/" + hub.sha256(weights) }.map(\.range) == [nil, "bytes=100000-"])
        #expect(elsewhere.allSatisfy { $0.authorization == nil }, "\(elsewhere)")
        #expect(hub.requests.filter { $0.path.hasPrefix("/\(PullTests.repo)/resolve/") }.allSatisfy { $0.authorization == Self.bearer })
    }

    /// A Location with another scheme and a host is not followed; the pull stops with one line that names it.
    /// FoundationNetworking reads a Location without a host ("file:///etc/passwd", "data:…") as a path on the same
    /// origin, so those end as the hub's 404 for that path: still one line, nothing read from the local disk.
    @Test(arguments: [("ftp://127.0.0.1/x", true), ("gopher://127.0.0.1:70/x", true), ("file:///etc/passwd", false), ("data:text/plain,x", false)])
    func aRedirectToAnotherSchemeIsNotFollowed(_ location: String, refused: Bool) async throws {
        let (hub, other) = try Self.hubs()
        defer { hub.stop(); other.stop() }
        hub.redirect(hub.infoRoute, to: location)
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        await #expect {
            try await PullTests.pull(hub, root: root)
        } throws: { error in
            HostileHubTests.expectOneLine(error)
            switch error as? HubError {
            case .refusedRedirect(_, let target)?: return refused && target == location
            case .notFound?: return !refused
            default: return false
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    /// Locations that are not well-formed addresses: none crashes the URL loading system or the pull, none is
    /// followed anywhere but the endpoint's own origin, each ends in one line.
    @Test(arguments: ["//127.0.0.1:99999/x", "//:80/x", "//[::1/x", "http://[::1]:1/x", "/%zz", "?x=1", "#f", "", " ", "http://",
                      "https:", "//", "///", "http:///x", "//a b/x", "\u{7F}", "http://127.0.0.1:0/x", "http://127.0.0.1:-1/x",
                      "http://user:pass@127.0.0.1:1/x", String(repeating: "/a", count: 5000)])
    func malformedLocationsEndInOneLine(_ location: String) async throws {
        let (hub, other) = try Self.hubs()
        defer { hub.stop(); other.stop() }
        hub.redirect(hub.infoRoute, to: location)
        let root = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var settings = HubSettings(endpoint: hub.endpoint, token: FakeHub.goodToken)
        settings.connectTimeout = 3
        let pull = ModelPull(repo: hub.repo, options: PullOptions(), settings: settings, cacheRoot: root)
        do { _ = try await pull.plan() } catch { HostileHubTests.expectOneLine(error) }
        #expect(hub.requests.filter { $0.host != "127.0.0.1:\(hub.port)" }.allSatisfy { $0.authorization == nil })
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    /// The rule itself, for the cases a plain-HTTP loopback hub cannot serve: https to http on the same host,
    /// default ports written or not, letter case of the host.
    @Test func thePolicyComparesSchemeHostAndPort() throws {
        let endpoint = try #require(Origin(URL(string: "https://huggingface.co")!))
        let policy = RedirectPolicy(endpoint: endpoint, authorization: Self.bearer)
        func carries(_ url: String, hadToken: Bool = true) -> Bool? {
            guard case .follow(let request, let keeps) = policy.decide(URLRequest(url: URL(string: url)!), hadToken: hadToken, range: nil) else { return nil }
            #expect((request.value(forHTTPHeaderField: "Authorization") != nil) == keeps, "\(url)")
            return keeps
        }
        #expect(carries("https://huggingface.co/api/x") == true)
        #expect(carries("https://HuggingFace.co:443/api/x") == true)
        #expect(carries("http://huggingface.co/api/x") == false)
        #expect(carries("http://huggingface.co:443/api/x") == false)
        #expect(carries("https://huggingface.co:8443/api/x") == false)
        #expect(carries("https://cdn-lfs.huggingface.co/x") == false)
        #expect(carries("https://huggingface.co.evil.example/x") == false)
        #expect(carries("https://huggingface.co/api/x", hadToken: false) == false)
        #expect(carries("file:///etc/passwd") == nil)
        var copied = URLRequest(url: URL(string: "https://evil.example/x")!)
        copied.setValue(Self.bearer, forHTTPHeaderField: "Authorization")
        guard case .follow(let stripped, false) = policy.decide(copied, hadToken: true, range: "bytes=5-") else { Issue.record("not followed"); return }
        #expect(stripped.value(forHTTPHeaderField: "Authorization") == nil && stripped.value(forHTTPHeaderField: "Range") == "bytes=5-")
        #expect(Origin(URL(string: "http://127.0.0.1")!) == Origin(URL(string: "http://127.0.0.1:80")!))
        #expect(Origin(URL(string: "http://localhost:80")!) != Origin(URL(string: "http://127.0.0.1:80")!))
    }

    /// The first request too: a token never goes to a URL off the endpoint's origin.
    @Test func requestsOffTheOriginNeverStartWithTheToken() throws {
        let http = HubHTTP(settings: HubSettings(endpoint: "https://huggingface.co", token: FakeHub.goodToken), repo: PullTests.repo)
        #expect(http.request(URL(string: "https://huggingface.co/api/models/a/b")!).value(forHTTPHeaderField: "Authorization") == Self.bearer)
        #expect(http.request(URL(string: "http://huggingface.co/api/models/a/b")!).value(forHTTPHeaderField: "Authorization") == nil)
        #expect(http.request(URL(string: "https://other.example/a")!).value(forHTTPHeaderField: "Authorization") == nil)
    }
}
