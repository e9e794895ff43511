import Foundation
import GRDB
import ImageIO
import ImageMetadata
import PollSupport
import SD3
@testable import StudioCore
import Testing

/// `sd3` as a hostile or clumsy user runs it, each run under a time limit: a bad output name, a FIFO, a device or a
/// folder where a PNG or an export is expected. Each ends with a non-zero exit (no signal, no hang), one line on
/// standard error, and no file left behind. Outputs are never overwritten, even by two runs at once.
@Suite struct HostileInputCommandLineTests {
    struct Outcome {
        var status: Int32
        var signal: Int32?
        var timedOut: Bool
        var stdout: String
        var stderr: String
        var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
    }

    /// Runs `sd3 ARGUMENTS` (or `prefix + [sd3] + ARGUMENTS`) with its own data folder; kills it after `limit` s.
    static func sd3(_ arguments: [String], data: String, prefix: [String] = [], limit: TimeInterval = 30) -> Outcome {
        let files = NSTemporaryDirectory() + "hostile-\(UUID().uuidString)"
        defer { ["out", "err"].forEach { try? FileManager.default.removeItem(atPath: files + "." + $0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, files + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, files + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let environment = ProcessInfo.processInfo.environment.merging(["XDG_DATA_HOME": data, "SD3_MODEL": Support.tinyModel]) { $1 }
        let program = prefix.first ?? TmuxStudio.sd3
        let argv = (prefix + [TmuxStudio.sd3] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        guard posix_spawn(&pid, program, &actions, nil, argv, envp) == 0 else { return Outcome(status: -1, signal: nil, timedOut: false, stdout: "", stderr: "spawn failed") }
        var status: Int32 = 0
        let timedOut = !Poll.untilBlocking(seconds: limit) { waitpid(pid, &status, WNOHANG) != 0 }
        if timedOut {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
        let read = { (suffix: String) in (try? String(contentsOfFile: files + suffix, encoding: .utf8)) ?? "" }
        // WIFEXITED / WEXITSTATUS / WTERMSIG: the low 7 bits are the signal, the next 8 the exit code.
        let signal = status & 0x7F
        return Outcome(status: signal == 0 ? (status >> 8) & 0xFF : 128 + signal, signal: signal == 0 ? nil : signal, timedOut: timedOut,
                       stdout: read(".out"), stderr: read(".err"))
    }

    /// Every name under `folder`, recursively (hidden files included).
    static func listing(_ folder: String) -> Set<String> {
        Set((FileManager.default.enumerator(atPath: folder)?.allObjects as? [String]) ?? [])
    }

    static let generate = ["generate", "-p", "a cat", "-W", "16", "-H", "16", "--steps", "1", "--seed", "7", "--threads", "1"]

    /// A folder with a FIFO, a subfolder and a non-PNG, for the cases below.
    static func hostileFolder() -> (folder: String, fifo: String, dir: String) {
        let folder = Support.temporaryFolder()
        let fifo = folder + "/fifo.png"
        mkfifo(fifo, 0o600)
        try? FileManager.default.createDirectory(atPath: folder + "/dir.png", withIntermediateDirectories: false)
        return (folder, fifo, folder + "/dir.png")
    }

    static func cases(_ folder: String, fifo: String, dir: String) -> [(arguments: [String], says: String)] {
        let png = "\(folder)/out.png"
        return [
            (generate + ["-o", ""], "--output is empty"),
            (generate + ["-o", "/dev/null"], "--output /dev/null is a device"),
            (generate + ["-o", fifo], "is a FIFO"),
            (generate + ["-o", folder + "/missing/x.png"], "does not exist"),
            (generate + ["-o", png, "--init-image", fifo], "\(fifo): is a FIFO"),
            (generate + ["-o", png, "--init-image", "/dev/zero"], "/dev/zero: is a device"),
            (generate + ["-o", png, "--init-image", dir], "\(dir): is a folder"),
            (generate + ["-o", png, "--params-from", fifo], "\(fifo): is a FIFO"),
            (generate + ["-o", png, "--params-from", "/dev/zero"], "/dev/zero: is a device"),
            (["recall", fifo], "\(fifo): is a FIFO"),
            (["recall", "/dev/zero"], "/dev/zero: is a device"),
            (["recall", dir], "\(dir): is a folder"),
            (["recall", folder + "/none.png"], "no such file"),
            (["favorites", "import", fifo], "\(fifo): is a FIFO"),
            (["favorites", "import", "/dev/zero"], "/dev/zero: is a device"),
            (["favorites", "import", dir], "\(dir): is a folder"),
        ]
    }

    @Test(.timeLimit(.minutes(10))) func badInputsFailInOneLineWithoutLeftovers() throws {
        let (folder, fifo, dir) = Self.hostileFolder()
        let data = Support.temporaryFolder()
        let before = Self.listing(folder)
        // What an older sd3 wrote for `-o /dev/null`; another process on the machine may have left one, so the check
        // is that these runs make or change none.
        let strays = ["/dev/null-1.png", "/dev/null.png"]
        func stamps() -> [String] { strays.map { "\(String(describing: try? FileManager.default.attributesOfItem(atPath: $0)[.modificationDate]))" } }
        let straysBefore = stamps()
        for (arguments, says) in Self.cases(folder, fifo: fifo, dir: dir) {
            let outcome = Self.sd3(arguments, data: data, limit: 30)
            let label = arguments.filter { $0 != "a cat" }.joined(separator: " ")
            #expect(!outcome.timedOut && outcome.signal == nil && outcome.status != 0, "\(label): status \(outcome.status), \(outcome.stderr)")
            #expect(outcome.stderrLines.count == 1 && outcome.stderr.contains(says), "\(label): \(outcome.stderr.debugDescription)")
            #expect(Self.listing(folder) == before, "\(label) left \(Self.listing(folder).subtracting(before))")
        }
        #expect(stamps() == straysBefore, "\(strays) made or changed: \(stamps())")
    }

    /// `-o FOLDER` writes inside it; an existing file gets a numbered sibling.
    @Test(.timeLimit(.minutes(10))) func outputFolderAndExistingFile() throws {
        let folder = Support.temporaryFolder(), data = Support.temporaryFolder()
        let inside = Self.sd3(Self.generate + ["-o", folder], data: data)
        #expect(inside.status == 0 && inside.stdout == folder + "/sd3-7.png\n", "\(inside.stderr)")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: folder + "/a.png"))
        let beside = Self.sd3(Self.generate + ["-o", folder + "/a.png"], data: data)
        #expect(beside.status == 0 && beside.stdout == folder + "/a-1.png\n", "\(beside.stderr)")
        #expect(try String(contentsOfFile: folder + "/a.png", encoding: .utf8) == "keep")
        #expect(try PNGFile.read(folder + "/a-1.png").image.width == 16)
    }

    /// Four runs at once with the same `-o`: four files, none overwritten, no temporary file left.
    @Test(.timeLimit(.minutes(10))) func concurrentRunsWithOneOutputNameKeepEveryImage() throws {
        let folder = Support.temporaryFolder(), data = Support.temporaryFolder()
        final class Outcomes: @unchecked Sendable {
            let lock = NSLock()
            var values: [Outcome] = []
        }
        let outcomes = Outcomes()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let outcome = Self.sd3(["generate", "-p", "run \(i)", "-W", "16", "-H", "16", "--steps", "1", "--seed", "\(i)", "--threads", "1",
                                    "-o", folder + "/same.png"], data: data, limit: 120)
            outcomes.lock.withLock { outcomes.values.append(outcome) }
        }
        #expect(outcomes.values.allSatisfy { $0.status == 0 }, "\(outcomes.values.map(\.stderr))")
        let written = outcomes.values.map { $0.stdout.trimmingCharacters(in: .newlines) }
        #expect(Set(written).count == 4, "\(written)")
        #expect(Self.listing(folder) == ["same.png", "same-1.png", "same-2.png", "same-3.png"], "\(Self.listing(folder))")
        let seeds = try written.map { path in
            try #require(MetadataReader.read(path).seed)
        }
        #expect(Set(seeds) == [0, 1, 2, 3], "each file is one run's image")
    }

    /// A dead writer's old `.partial` in the output folder is swept when generate starts; a live one stays.
    @Test(.timeLimit(.minutes(10))) func staleTemporaryFilesAreSweptAtStart() throws {
        let folder = Support.temporaryFolder(), data = Support.temporaryFolder()
        let (_, live) = try Support.plantPartials(in: folder, dead: "x", live: "y")
        let outcome = Self.sd3(Self.generate + ["-o", folder + "/z.png"], data: data)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(Self.listing(folder) == [live, "z.png"], "\(Self.listing(folder))")
    }

    /// Rows that cannot be decoded (a path that is not UTF-8, as BLOB or as TEXT; parameters that are not JSON; a
    /// date that is no date) are skipped with one line naming them; the rest are listed.
    @Test func damagedRowsAreSkippedAndNamed() throws {
        let data = Support.temporaryFolder()
        let path = data + "/sd3-studio/studio.sqlite"
        let store = try StudioStore(path: path)
        for i in 0..<3 { try store.add(file: "/good/\(i).png", date: Date(), metadata: Support.metadata(seed: UInt64(i), prompt: "good \(i)")) }
        let queue = try DatabaseQueue(path: path)
        let json = Support.metadata().json
        try queue.write { db in
            try db.execute(sql: "INSERT INTO image (file, createdAt, prompt, model, metadata) VALUES (CAST(x'2FFF2E706E67' AS BLOB), '2026-01-01 00:00:00', 'p', 'm', ?)", arguments: [json])
            try db.execute(sql: "INSERT INTO image (file, createdAt, prompt, model, metadata) VALUES (CAST(x'2FFE2E706E67' AS TEXT), '2026-01-01 00:00:00', 'p', 'm', ?)", arguments: [json])
            try db.execute(sql: "INSERT INTO image (file, createdAt, prompt, model, metadata) VALUES ('/x.png', '2026-01-01 00:00:00', 'p', 'm', '{not json')")
            try db.execute(sql: "INSERT INTO image (file, createdAt, prompt, model, metadata) VALUES ('/y.png', 'yesterday', 'p', 'm', ?)", arguments: [json])
        }
        try queue.close()
        let listing = try store.listing()
        #expect(listing.records.map(\.file) == ["/good/2.png", "/good/1.png", "/good/0.png"] && listing.damaged == [7, 6, 5, 4])
        #expect(throws: StoreError.self) { try store.record(id: 4) }
        let list = Self.sd3(["history", "list"], data: data)
        #expect(list.status == 0 && list.signal == nil && list.stdout.contains("/good/0.png") && list.stdout.contains("/good/2.png"), "\(list.stderr)")
        #expect(list.stderrLines.count == 1 && list.stderr.contains("skipped damaged rows #7, #6, #5, #4"), "\(list.stderr)")
        let json2 = Self.sd3(["history", "list", "--json"], data: data)
        let rows = try JSONSerialization.jsonObject(with: Data(json2.stdout.utf8)) as? [[String: Any]]
        #expect(json2.status == 0 && rows?.count == 3)
        let show = Self.sd3(["favorites", "show", "5"], data: data)
        #expect(show.status != 0 && show.signal == nil && show.stderrLines.count == 1 && show.stderr.contains("#5 is damaged"), "\(show.stderr)")
    }

    /// A data folder and database the user cannot write (here: run as `nobody` on root's files, or chmod when not
    /// root) still list.
    @Test func readOnlyDataFolderStillLists() throws {
        let data = Support.temporaryFolder()
        // Closed at the end of the block: the last connection checkpoints and removes -wal and -shm, so a reader
        // must open the WAL database without them.
        do {
            let store = try StudioStore(path: data + "/sd3-studio/studio.sqlite")
            try store.add(file: "/good/a.png", date: Date(), metadata: Support.metadata(prompt: "still here"), favorite: true)
        }
        #expect(Self.listing(data + "/sd3-studio") == ["studio.sqlite"])
        for path in [data, data + "/sd3-studio"] { chmod(path, 0o755) }
        chmod(data + "/sd3-studio/studio.sqlite", 0o444)
        let prefix: [String]
        if getuid() == 0 {
            prefix = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            try #require(FileManager.default.isExecutableFile(atPath: prefix[0]), "setpriv runs the check as nobody")
        } else {
            chmod(data + "/sd3-studio", 0o555)
            prefix = []
        }
        defer { chmod(data + "/sd3-studio", 0o755) }
        for command in [["history", "list"], ["favorites", "list"]] {
            let outcome = Self.sd3(command, data: data, prefix: prefix)
            #expect(outcome.status == 0 && outcome.stdout.contains("still here"), "\(command): \(outcome.stderr)")
        }
        #expect(Self.listing(data + "/sd3-studio") == ["studio.sqlite"])
    }
}
