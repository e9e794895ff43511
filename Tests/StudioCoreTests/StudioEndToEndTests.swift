import Foundation
import ImageIO
import Testing

/// The studio as a user drives it, under tmux (send-keys / capture-pane) on the tiny fixture model: type a
/// prompt, F5, watch `step i/N`, type into the negative prompt while it runs, F2, F10; then check the PNG and
/// `sd3 favorites list --json`. Uses the sd3 binary built beside this test bundle.
@Suite(.serialized) struct StudioEndToEndTests {
    static let tmux = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/opt/homebrew/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static var sd3: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sd3").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return Support.packageRoot + "/.build/debug/sd3"
    }

    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(3)))
    func generateStarAndQuit() async throws {
        let tmux = Self.tmux!, sd3 = Self.sd3
        #expect(FileManager.default.isExecutableFile(atPath: sd3), "no sd3 binary at \(sd3): run swift build first")
        let data = Support.temporaryFolder()
        let socket = "sd3-e2e-\(UUID().uuidString.prefix(8))"
        func tmuxRun(_ arguments: [String]) -> (status: Int32, output: String) {
            run(tmux, ["-L", socket] + arguments)
        }
        defer { _ = tmuxRun(["kill-server"]) }
        let command = "env XDG_DATA_HOME=\(data) LANG=C.UTF-8 TERM=screen '\(sd3)' studio --model '\(Support.tinyModel)' -W 16 -H 16 --steps 25 --seed 11 --threads 1"
        // The tmux server outlives this call and would hold a pipe open: no capture here.
        #expect(run(tmux, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "studio", "-x", "100", "-y", "30", command], capture: false).status == 0)
        func screen() -> String { tmuxRun(["capture-pane", "-p", "-t", "studio"]).output }
        func waitFor(_ text: String, seconds: Double = 60) async -> String? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let s = screen()
                if s.contains(text) { return s }
                try? await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for '\(text)'; the screen:\n\(screen())")
            return nil
        }
        guard await waitFor("Type a prompt, F5 to generate") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "-l", "a red circle 水彩"])
        _ = tmuxRun(["send-keys", "-t", "studio", "F5"])
        guard let running = await waitFor("step ") else { return }
        #expect(running.contains("/25"), "\(running)")
        // Typing while the engine runs: the negative prompt shows it before the generation ends.
        _ = tmuxRun(["send-keys", "-t", "studio", "Tab"])
        _ = tmuxRun(["send-keys", "-t", "studio", "-l", "no blur"])
        guard let typed = await waitFor("no blur") else { return }
        #expect(typed.contains("step ") && !typed.contains("Finished"), "the generation ended before the typing showed:\n\(typed)")
        let steps = typed.split(separator: "\n").first { $0.hasPrefix("step ") }.map(String.init) ?? ""
        guard await waitFor("Saved ") != nil else { return }
        #expect(!steps.hasPrefix("step 25/25"), "no intermediate step was seen: \(steps)")
        _ = tmuxRun(["send-keys", "-t", "studio", "F2"])
        guard await waitFor("★ Starred #1") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "F10"])
        let deadline = Date().addingTimeInterval(10)
        while tmuxRun(["has-session", "-t", "studio"]).status == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(tmuxRun(["has-session", "-t", "studio"]).status != 0, "the studio did not quit on F10")

        let outputs = data + "/sd3-studio/outputs"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []
        #expect(files == ["00001-11-a-red-circle-水彩.png"], "\(files)")
        guard let file = files.first else { return }
        let png = try PNGFile.read(outputs + "/" + file)
        let parameters = png.text.first { $0.key == "parameters" }?.value ?? ""
        // The negative prompt typed during the run belongs to the next generation, not this one.
        #expect(parameters.hasPrefix("a red circle 水彩\nSteps: 25, Sampler: Euler"), "\(parameters)")
        #expect(png.image.width == 16 && png.image.height == 16)

        let favorites = run(sd3, ["favorites", "list", "--json"], environment: ["XDG_DATA_HOME": data])
        #expect(favorites.status == 0)
        let list = try JSONSerialization.jsonObject(with: Data(favorites.output.utf8)) as? [[String: Any]] ?? []
        #expect(list.count == 1, "\(favorites.output)")
        #expect(list.first?["prompt"] as? String == "a red circle 水彩")
        #expect((list.first?["parameters"] as? [String: Any])?["seed"] as? Int == 11)
    }

    /// Favorites across restarts: star an image, quit, start a new studio with other settings, find the image in
    /// the favorites browser by a word of its prompt, recall it (the fields come back), note it, then delete it
    /// from the history browser after the y/n question (the PNG goes too).
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(3)))
    func starRestartFindRecallNoteAndDelete() async throws {
        let tmux = Self.tmux!, sd3 = Self.sd3
        let data = Support.temporaryFolder()
        let socket = "sd3-e2e-\(UUID().uuidString.prefix(8))"
        defer { _ = run(tmux, ["-L", socket, "kill-server"]) }
        func start(_ arguments: String) {
            let command = "env XDG_DATA_HOME=\(data) LANG=C.UTF-8 TERM=screen '\(sd3)' studio --model '\(Support.tinyModel)' --threads 1 \(arguments)"
            #expect(run(tmux, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "studio", "-x", "100", "-y", "30", command], capture: false).status == 0)
        }
        func keys(_ keys: String...) { _ = run(tmux, ["-L", socket, "send-keys", "-t", "studio"] + keys) }
        func type(_ text: String) { _ = run(tmux, ["-L", socket, "send-keys", "-t", "studio", "-l", text]) }
        func screen() -> String { run(tmux, ["-L", socket, "capture-pane", "-p", "-t", "studio"]).output }
        func waitFor(_ text: String, seconds: Double = 60) async -> String? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let s = screen()
                if s.contains(text) { return s }
                try? await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for '\(text)'; the screen:\n\(screen())")
            return nil
        }
        func quit() async throws {
            keys("F10")
            let deadline = Date().addingTimeInterval(10)
            while run(tmux, ["-L", socket, "has-session", "-t", "studio"]).status == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        }

        start("-W 16 -H 16 --steps 3 --seed 11")
        guard await waitFor("Type a prompt, F5 to generate") != nil else { return }
        type("a lighthouse zebra")
        keys("Tab")
        type("no fog")
        keys("F5")
        guard await waitFor("Saved ") != nil else { return }
        keys("F2")
        guard await waitFor("★ Starred #1") != nil else { return }
        try await quit()

        start("-W 32 -H 32 --steps 7 --seed 99")
        guard await waitFor("Type a prompt, F5 to generate") != nil else { return }
        keys("F3")
        guard await waitFor("Favorites 1/1") != nil else { return }
        type("ZEBRA")
        guard await waitFor("Favorites 1/1 · search: ZEBRA") != nil else { return }
        keys("Enter")
        guard let recalled = await waitFor("Recalled #1 seed 11") else { return }
        #expect(recalled.contains("a lighthouse zebra") && recalled.contains("no fog"), "\(recalled)")
        let settings = recalled.split(separator: "\n").map { $0.replacingOccurrences(of: " ", with: "") }
        #expect(settings.contains { $0.contains("Steps3") && $0.contains("Guidance") }, "\(recalled)")
        #expect(settings.contains { $0.contains("Seed11") && $0.contains("Seedmodefixed") }, "\(recalled)")
        #expect(settings.contains { $0.contains("Width16") && $0.contains("Height16") }, "\(recalled)")
        keys("F3")
        guard await waitFor("Favorites 1/1") != nil else { return }
        keys("C-n")
        guard await waitFor("Note for #1") != nil else { return }
        type("keeper")
        keys("Enter")
        guard await waitFor("Note saved on #1") != nil else { return }
        keys("F4")
        guard await waitFor("History 1/1") != nil else { return }
        keys("DC")
        guard await waitFor("y/n") != nil else { return }
        keys("y")
        guard await waitFor("Deleted #1 and 00001-11-a-lighthouse-zebra.png") != nil else { return }
        try await quit()

        let outputs = (try? FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio/outputs")) ?? ["?"]
        #expect(outputs.isEmpty, "the PNG should be deleted: \(outputs)")
        let history = run(sd3, ["history", "list", "--json"], environment: ["XDG_DATA_HOME": data])
        #expect(history.status == 0 && history.output.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]", "\(history.output)")
    }

    /// A corrupt database: the studio opens anyway, says so on its status line, keeps the damaged file aside.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(1)))
    func corruptDatabaseIsReportedByTheStudio() async throws {
        let tmux = Self.tmux!, sd3 = Self.sd3
        let data = Support.temporaryFolder()
        try FileManager.default.createDirectory(atPath: data + "/sd3-studio", withIntermediateDirectories: true)
        let garbage = Data((0..<6000).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        try garbage.write(to: URL(fileURLWithPath: data + "/sd3-studio/studio.sqlite"))
        let socket = "sd3-e2e-\(UUID().uuidString.prefix(8))"
        defer { _ = run(tmux, ["-L", socket, "kill-server"]) }
        let command = "env XDG_DATA_HOME=\(data) LANG=C.UTF-8 TERM=screen '\(sd3)' studio --model '\(Support.tinyModel)' --threads 1"
        #expect(run(tmux, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "studio", "-x", "300", "-y", "30", command], capture: false).status == 0)
        let deadline = Date().addingTimeInterval(30)
        var screen = ""
        while Date() < deadline, !screen.contains("moved aside") {
            screen = run(tmux, ["-L", socket, "capture-pane", "-p", "-t", "studio"]).output
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(screen.contains("studio.sqlite was unreadable (") && screen.contains("moved aside to "), "\(screen)")
        _ = run(tmux, ["-L", socket, "send-keys", "-t", "studio", "F10"])
        let aside = try FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio").filter { $0.hasPrefix("studio.sqlite.corrupt-") && !$0.contains("-wal") && !$0.contains("-shm") }
        #expect(aside.count == 1 && FileManager.default.contents(atPath: data + "/sd3-studio/" + (aside.first ?? "")) == garbage, "\(aside)")
    }

    /// F6 on the tiny model: 4 seeds render as a grid; Right picks the second, Enter refines it at the full
    /// settings; the one saved PNG equals `sd3 generate` with that seed.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(3)))
    func exploreFourSeedsAndRefine() async throws {
        let tmux = Self.tmux!, sd3 = Self.sd3
        let data = Support.temporaryFolder()
        let socket = "sd3-e2e-\(UUID().uuidString.prefix(8))"
        func tmuxRun(_ arguments: [String]) -> (status: Int32, output: String) { run(tmux, ["-L", socket] + arguments) }
        defer { _ = tmuxRun(["kill-server"]) }
        let command = "env XDG_DATA_HOME=\(data) XDG_CONFIG_HOME=\(data)/config LANG=C.UTF-8 TERM=screen '\(sd3)' studio --model '\(Support.tinyModel)' -W 32 -H 32 --steps 4 --seed 21 --threads 1"
        #expect(run(tmux, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "studio", "-x", "100", "-y", "30", command], capture: false).status == 0)
        func screen() -> String { tmuxRun(["capture-pane", "-p", "-t", "studio"]).output }
        func waitFor(_ text: String, seconds: Double = 60) async -> String? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let s = screen()
                if s.contains(text) { return s }
                try? await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for '\(text)'; the screen:\n\(screen())")
            return nil
        }
        guard await waitFor("F6 to explore seeds") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "-l", "a red circle"])
        _ = tmuxRun(["send-keys", "-t", "studio", "F6"])
        guard let grid = await waitFor("4 seeds in ") else { return }
        #expect(grid.contains("Seeds · 16×16, 8 steps") && grid.contains("[21]") && grid.contains(" 24 "), "\(grid)")
        _ = tmuxRun(["send-keys", "-t", "studio", "Right"])
        guard await waitFor("[22]") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "Enter"])
        guard await waitFor("Saved ") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "F10"])
        let deadline = Date().addingTimeInterval(10)
        while tmuxRun(["has-session", "-t", "studio"]).status == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }

        let outputs = data + "/sd3-studio/outputs"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []
        #expect(files == ["00001-22-a-red-circle.png"], "only the refinement is saved: \(files)")
        guard let file = files.first else { return }
        let refined = try PNGFile.read(outputs + "/" + file).image
        let reference = data + "/generate.png"
        let generated = run(sd3, ["generate", "--model", Support.tinyModel, "-p", "a red circle", "-W", "32", "-H", "32", "--steps", "4",
                                  "--seed", "22", "--threads", "1", "-o", reference], environment: ["XDG_CONFIG_HOME": data + "/config", "XDG_DATA_HOME": data + "/generate-data"])
        #expect(generated.status == 0, "\(generated.output)")
        #expect(refined == (try PNGFile.read(reference).image), "the refinement differs from sd3 generate --seed 22")
        let history = run(sd3, ["history", "list", "--json"], environment: ["XDG_DATA_HOME": data])
        let rows = try JSONSerialization.jsonObject(with: Data(history.output.utf8)) as? [[String: Any]] ?? []
        #expect(rows.count == 1, "only the refinement is in the history, not the drafts: \(history.output)")
    }

    /// Esc in the middle of a grid stops the running draft; the finished cells stay; a second Esc leaves the grid.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(6)))
    func cancelMidGrid() async throws {
        let tmux = Self.tmux!, sd3 = Self.sd3
        let data = Support.temporaryFolder()
        let socket = "sd3-e2e-\(UUID().uuidString.prefix(8))"
        func tmuxRun(_ arguments: [String]) -> (status: Int32, output: String) { run(tmux, ["-L", socket] + arguments) }
        defer { _ = tmuxRun(["kill-server"]) }
        // Drafts of 40 steps, so that Esc lands while the second one runs; the waits are long for a busy machine.
        let command = "env XDG_DATA_HOME=\(data) XDG_CONFIG_HOME=\(data)/config LANG=C.UTF-8 TERM=screen '\(sd3)' studio --model '\(Support.tinyModel)' -W 32 -H 32 --seed 5 --threads 1 --draft-steps 40 -p 'a red circle'"
        #expect(run(tmux, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "studio", "-x", "100", "-y", "30", command], capture: false).status == 0)
        func screen() -> String { tmuxRun(["capture-pane", "-p", "-t", "studio"]).output }
        func waitFor(_ text: String, seconds: Double = 150) async -> String? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let s = screen()
                if s.contains(text) { return s }
                try? await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for '\(text)'; the screen:\n\(screen())")
            return nil
        }
        guard await waitFor("F6 to explore seeds") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "F6"])
        guard await waitFor("Exploring seed 6 (2 of 4)") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "Escape"])
        guard let cancelled = await waitFor("Cancelled: 1 of 4 seeds rendered") else { return }
        #expect(cancelled.contains("Seeds · 16×16, 40 steps") && cancelled.contains("[5]"), "\(cancelled)")
        _ = tmuxRun(["send-keys", "-t", "studio", "Escape"])
        guard let left = await waitFor("Left the seed grid") else { return }
        #expect(left.contains("Preview") && !left.contains("Seeds ·"), "\(left)")
        _ = tmuxRun(["send-keys", "-t", "studio", "F10"])
        let files = (try? FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio/outputs")) ?? []
        #expect(files.isEmpty, "drafts are not saved: \(files)")
    }

    /// A broken theme file: the studio opens on the dark theme and names the file and line; F7 still cycles.
    @Test(.enabled(if: tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(1)))
    func aBrokenThemeIsReportedAndTheStudioRuns() async throws {
        let tmux = Self.tmux!, sd3 = Self.sd3
        let data = Support.temporaryFolder()
        try "[title]\nfg = \"black\"\nbg = \"chartreuse\"\n".write(toFile: data + "/broken.toml", atomically: true, encoding: .utf8)
        let socket = "sd3-e2e-\(UUID().uuidString.prefix(8))"
        func tmuxRun(_ arguments: [String]) -> (status: Int32, output: String) { run(tmux, ["-L", socket] + arguments) }
        defer { _ = tmuxRun(["kill-server"]) }
        let command = "env XDG_DATA_HOME=\(data) XDG_CONFIG_HOME=\(data)/config LANG=C.UTF-8 TERM=screen '\(sd3)' studio --model '\(Support.tinyModel)' --theme '\(data)/broken.toml'"
        #expect(run(tmux, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "studio", "-x", "200", "-y", "30", command], capture: false).status == 0)
        func screen() -> String { tmuxRun(["capture-pane", "-p", "-t", "studio"]).output }
        func waitFor(_ text: String) async -> String? {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let s = screen()
                if s.contains(text) { return s }
                try? await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for '\(text)'; the screen:\n\(screen())")
            return nil
        }
        guard await waitFor("\(data)/broken.toml:3: [title] bg: \"chartreuse\" is not a colour") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "F7"])
        guard await waitFor("Theme: high-contrast: bright white and yellow on black (F7 for the next)") != nil else { return }
        _ = tmuxRun(["send-keys", "-t", "studio", "F10"])
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
