import Foundation
import Testing
@testable import Hub

/// `sd3 models pull` meeting bad input and a hostile hub: exit status not 0, one `Error:` line, no signal, the token
/// nowhere in the output, nothing in the cache that was not asked for.
@Suite(.timeLimit(.minutes(10))) struct PullCommandTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        var arguments: [String]
        var environment: [String: String] = [:]
        var expected: String
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "revision climbing out", arguments: ["--revision", "../../x"], expected: "'../../x' is not a revision"),
        Case(label: "revision through a branch", arguments: ["--revision", "main/../../../x"], expected: "is not a revision"),
        Case(label: "parallel 0", arguments: ["--parallel", "0"], expected: "--parallel is '0'"),
        Case(label: "parallel huge", arguments: ["--parallel", "9223372036854775807"], expected: "--parallel is"),
        Case(label: "timeout not a number", arguments: [], environment: ["HF_HUB_DOWNLOAD_TIMEOUT": "soon"], expected: "HF_HUB_DOWNLOAD_TIMEOUT is 'soon'"),
        Case(label: "timeout NaN", arguments: [], environment: ["HF_HUB_DOWNLOAD_TIMEOUT": "nan"], expected: "HF_HUB_DOWNLOAD_TIMEOUT is 'nan'"),
        Case(label: "endpoint not http", arguments: [], environment: ["HF_ENDPOINT": "file:///etc"], expected: "HF_ENDPOINT is 'file:///etc'"),
        Case(label: "endpoint with credentials", arguments: [], environment: ["HF_ENDPOINT": "http://me:hf_inTheAddress@127.0.0.1:9"],
             expected: "HF_ENDPOINT is 'http://127.0.0.1:9 with a user or password'"),
        Case(label: "drip", arguments: [], environment: ["HF_HUB_DOWNLOAD_TIMEOUT": "1"], expected: "no data from"),
        Case(label: "endless body", arguments: ["--include", "transformer/"], expected: "more than the listed 300000 bytes"),
    ]

    @Test(arguments: cases)
    func badInputIsOneLineAndLeavesNothing(_ test: Case) throws {
        let hub = try FakeHub(repo: PullTests.repo, files: PullTests.files())
        defer { hub.stop() }
        let neighbours = try Neighbours(repo: PullTests.repo)
        defer { neighbours.remove() }
        if test.label == "drip" { hub.flood(hub.infoRoute, .init(contentLength: 900, total: nil, chunk: 1, delay: 3)) }
        if test.label == "endless body" { hub.flood(hub.resolveRoute(hub.files[2].path), .init(contentLength: nil, total: nil)) }
        // FoundationNetworking makes its URL cache and cookie folders (empty: the pull turns both off) under the XDG
        // folders on first use of URLSession; they go beside the neighbourhood and must hold no file.
        let foundation = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: foundation) }
        let base = ["HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": neighbours.cache, "HF_HOME": neighbours.root, "HOME": neighbours.root,
                    "XDG_CACHE_HOME": foundation + "/cache", "XDG_DATA_HOME": foundation + "/data", "HF_TOKEN": FakeHub.goodToken, "PATH": "/usr/bin:/bin"]
        // The drip and the endless body never end by themselves: the command returning with its error shows it stopped
        // them (a command that hung would be killed by `TokenTests.run`'s watchdog, and end by a signal, not an exit).
        let result = try TokenTests.run(["models", "pull", PullTests.repo] + test.arguments, environment: base.merging(test.environment) { $1 })
        #expect(result.status != 0 && result.reason == .exit, "\(test.label): status \(result.status) \(result.reason)")
        let lines = result.output.split(separator: "\n")
        let errors = lines.filter { $0.contains("Error: ") }
        #expect(errors.count == 1 && errors.last?.contains(test.expected) == true, "\(test.label): \(result.output)")
        #expect(lines.last.map(String.init) == errors.last.map(String.init), "\(test.label): the error is not the last line")
        #expect(!result.output.contains(FakeHub.goodToken) && !result.output.contains("hf_good") && !result.output.contains("hf_inTheAddress"),
                "\(test.label): a token was printed")
        try neighbours.expectIntact(test.label)
        let kept = (FileManager.default.enumerator(atPath: foundation)?.allObjects as? [String] ?? []).filter { path in
            var folder: ObjCBool = false
            return !FileManager.default.fileExists(atPath: foundation + "/" + path, isDirectory: &folder) || !folder.boolValue
        }
        #expect(kept.isEmpty, "\(test.label): Foundation kept \(kept)")
        #expect(!FileManager.default.fileExists(atPath: CacheLayout(root: neighbours.cache, repo: PullTests.repo).snapshot(FakeHub.commit)))
    }
}
