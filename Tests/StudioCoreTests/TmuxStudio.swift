import Foundation
import PollSupport
import Testing

/// A studio run under tmux for an end-to-end test: its own tmux server (so tests never share one), keys in
/// with send-keys, the screen out with capture-pane. Waits poll the screen until a deadline, never sleep a fixed
/// time, so a busy machine only makes them slower.
struct TmuxStudio {
    static let tmux = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/opt/homebrew/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The sd3 binary built beside this test bundle.
    static var sd3: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sd3").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return Support.packageRoot + "/.build/debug/sd3"
    }

    let socket = "sd3-e2e-\(UUID().uuidString.prefix(8))"
    var columns = 100
    var rows = 30

    @discardableResult
    func tmux(_ arguments: [String]) -> (status: Int32, output: String) { run(Self.tmux!, ["-L", socket] + arguments) }

    /// Starts `sd3 studio ARGUMENTS` in a new session with `environment` (LANG and TERM are set here).
    func start(_ arguments: String, environment: [String: String]) {
        let variables = environment.merging(["LANG": "C.UTF-8", "TERM": "screen"]) { a, _ in a }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let command = "env \(variables) '\(Self.sd3)' studio \(arguments)"
        // The tmux server outlives this call and would hold a pipe open: no capture here.
        let started = run(Self.tmux!, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "studio", "-x", "\(columns)", "-y", "\(rows)", command],
                          capture: false)
        #expect(started.status == 0, "tmux could not start: \(command)")
    }

    func keys(_ keys: String...) { tmux(["send-keys", "-t", "studio"] + keys) }
    func type(_ text: String) { tmux(["send-keys", "-t", "studio", "-l", text]) }
    func screen() -> String { tmux(["capture-pane", "-p", "-t", "studio"]).output }
    var isRunning: Bool { tmux(["has-session", "-t", "studio"]).status == 0 }

    /// The screen once it shows every one of `texts`; nil after recording an issue with the screen.
    func waitFor(_ texts: String..., seconds: Double = 60) async -> String? {
        await waitUntil("\(texts)", seconds: seconds) { screen in texts.allSatisfy(screen.contains) }
    }

    /// The screen once `condition` holds for it; nil after recording an issue naming `what` with the screen.
    /// Only time this test got to look counts (Poll.until).
    func waitUntil(_ what: String, seconds: Double = 60, _ condition: (String) -> Bool) async -> String? {
        var s = ""
        if await Poll.until(seconds: seconds, { s = screen(); return condition(s) }) { return s }
        Issue.record("timed out waiting for \(what); the screen:\n\(s)")
        return nil
    }

    /// Whether the settings pane shows each of `rows`, written without spaces ("Steps4Guidance4.5").
    static func shows(_ rows: [String], _ screen: String) -> Bool {
        let packed = screen.replacingOccurrences(of: " ", with: "")
        return rows.allSatisfy(packed.contains)
    }

    /// F10, then waits for the studio to end; false (with an issue) if it did not.
    @discardableResult
    func quit(seconds: Double = 20) async -> Bool {
        keys("F10")
        await Poll.until(seconds: seconds) { !isRunning }
        #expect(!isRunning, "the studio did not quit on F10; the screen:\n\(screen())")
        return !isRunning
    }

    /// Ends the tmux server, and the studio with it; a studio that outlives it (one hung while quitting on the hangup)
    /// is killed, so a failed test leaves no process behind.
    /// Whether `pid` runs: a zombie nobody has reaped yet (a container's first process may never) does not.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return kill(pid, 0) == 0 }
        // "PID (COMM) STATE …": the state after the last ')', as COMM may hold one.
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    func stop() {
        let pane = Int32(tmux(["display-message", "-p", "-t", "studio", "#{pane_pid}"]).output.trimmingCharacters(in: .whitespacesAndNewlines))
        tmux(["kill-server"])
        // The pane's process is `env …`, which execs sd3: the same pid.
        guard let pane, pane > 1 else { return }
        if !Poll.untilBlocking(seconds: 10, { !Self.isAlive(pane) }) {
            Issue.record("the studio (pid \(pane)) outlived its tmux server by 10 s: killed")
            kill(pane, SIGKILL)
        }
    }
}

/// Runs a program to completion, standard output and error together (or discarded). posix_spawn and waitpid
/// rather than Foundation's Process, whose waitUntilExit can hang on Linux when called from a test's task.
func run(_ program: String, _ arguments: [String], environment: [String: String] = [:], capture: Bool = true) -> (status: Int32, output: String) {
    let outputPath = capture ? NSTemporaryDirectory() + "run-\(UUID().uuidString)" : "/dev/null"
    defer { if capture { try? FileManager.default.removeItem(atPath: outputPath) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
    let argv = ([program] + arguments).map { strdup($0) } + [nil]
    let envp = env.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, program, &actions, nil, argv, envp)
    guard spawned == 0 else { return (-1, "\(program): posix_spawn failed (\(String(cString: strerror(spawned))))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1, errno == EINTR {}
    let output = capture ? ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "") : ""
    // WIFEXITED / WEXITSTATUS (macros that do not import): the low 7 bits are the signal, the next 8 the code.
    return ((status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output)
}
