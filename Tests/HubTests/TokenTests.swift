import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Hub

/// The token must never reach the user's terminal or a log: run the real `sd3 models pull` in each case a
/// token is involved and grep everything it printed.
@Suite struct TokenTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The sd3 binary built beside this test bundle.
    static var sd3: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sd3").path
        return FileManager.default.isExecutableFile(atPath: beside) ? beside : packageRoot + "/.build/debug/sd3"
    }

    static func run(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String, reason: Process.TerminationReason) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sd3)
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // A hung command is killed (its reason is then .uncaughtSignal) instead of hanging the test run; the bound is a
        // hang guard, far above any case's time on a loaded machine, not a speed check.
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 600, execute: watchdog)
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), process.terminationReason)
    }

    @Test func tokenNeverAppearsInOutput() throws {
        let hub = try FakeHub(repo: PullTests.repo, files: PullTests.files(), gated: true)
        let home = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let cache = home + "/hub"
        let base = ["HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": cache, "HF_HOME": home, "HOME": home, "PATH": "/usr/bin:/bin"]
        let wrong = "hf_wrongTOKENalsoSecret789"
        try Data(FakeHub.goodToken.utf8).write(to: URL(fileURLWithPath: home + "/token"))

        let cases: [(String, [String], [String: String], Int32?, String)] = [
            ("flag, dry run", ["--token", FakeHub.goodToken, "--dry-run"], base, 0, "to fetch"),
            ("unlicensed flag", ["--token", FakeHub.unlicensedToken], base, nil, "403"),
            ("wrong HF_TOKEN", [], base.merging(["HF_TOKEN": wrong]) { $1 }, nil, "refused the token"),
            ("token file", [], base, 0, "/snapshots/" + FakeHub.commit),
        ]
        var outputs = ""
        for (label, flags, environment, status, expected) in cases {
            let result = try Self.run(["models", "pull", PullTests.repo] + flags, environment: environment)
            if let status { #expect(result.status == status, "\(label): \(result.output)") } else { #expect(result.status != 0, "\(label)") }
            #expect(result.output.contains(expected), "\(label): \(result.output)")
            if status == nil { #expect(result.output.split(separator: "\n").count == 1, "\(label): one-line errors: \(result.output)") }
            outputs += result.output
        }
        for token in [FakeHub.goodToken, FakeHub.unlicensedToken, wrong] {
            #expect(!outputs.contains(token), "a token was printed")
            #expect(!outputs.contains(String(token.dropFirst(3).prefix(8))), "part of a token was printed")
        }
        #expect(!String(describing: HubSettings(endpoint: hub.endpoint, token: FakeHub.goodToken)).contains(FakeHub.goodToken))
        var dumped = ""
        dump(HubSettings(endpoint: hub.endpoint, token: FakeHub.goodToken), to: &dumped)
        #expect(!dumped.contains(FakeHub.goodToken))
        try PullTests.expectSnapshot(hub, root: cache)
    }

    /// The token file is read only when it is a regular file of at most 64 KiB (through a link is fine): a FIFO,
    /// /dev/zero or a folder there is one clear error from the pull, never a read that blocks or fills memory.
    @Test(.timeLimit(.minutes(10))) func aTokenFileThatIsNotAFileIsRefused() async throws {
        let home = PullTests.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try Data((FakeHub.goodToken + "\n").utf8).write(to: URL(fileURLWithPath: home + "/token"))
        try FileManager.default.createSymbolicLink(atPath: home + "/link", withDestinationPath: home + "/token")
        #expect(mkfifo(home + "/fifo", 0o600) == 0)
        try FileManager.default.createDirectory(atPath: home + "/folder", withIntermediateDirectories: true)
        try Data(count: 65 << 10).write(to: URL(fileURLWithPath: home + "/huge"))
        try Data([0xFF, 0xFE, 0x00]).write(to: URL(fileURLWithPath: home + "/binary"))
        for (path, readable) in [("token", true), ("link", true), ("absent", true), ("fifo", false), ("folder", false), ("huge", false),
                                 ("binary", false), ("/dev/zero", false)] {
            let full = path.hasPrefix("/") ? path : home + "/" + path
            let settings = HubSettings(token: nil, environment: ["HF_TOKEN_PATH": full, "HF_ENDPOINT": "http://127.0.0.1:9"])
            #expect(settings.hasToken == (readable && path != "absent"), "\(path)")
            if readable { #expect(throws: Never.self) { try settings.check() } } else {
                #expect(throws: HubError.badSetting(name: "the token file", value: URL(fileURLWithPath: full).resolvingSymlinksInPath().path,
                                                    expected: "a regular file of at most 64 KiB holding the token" + (path == "binary" ? " as UTF-8 text" : ""))) {
                    try settings.check()
                }
            }
        }
    }
}
