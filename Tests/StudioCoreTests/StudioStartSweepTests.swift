import Foundation
import Testing

/// The studio's start sweeps its outputs folder as `generate` does: a dead writer's old `.partial` goes, a live
/// process's stays.
@Suite struct StudioStartSweepTests {
    @Test(.enabled(if: TmuxStudio.tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(2)))
    func studioStartSweepsItsOutputsFolder() async throws {
        let data = Support.temporaryFolder(), outputs = Support.temporaryFolder()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        let dead = ".00001-1-x.png.\(process.processIdentifier)-1a.partial", live = ".00002-1-y.png.\(getpid())-2b.partial"
        for name in [dead, live] {
            try Data("half".utf8).write(to: URL(fileURLWithPath: outputs + "/" + name))
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: outputs + "/" + name)
        }
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' --threads 1 --output-dir '\(outputs)'", environment: ["XDG_DATA_HOME": data])
        guard await studio.waitFor("Type a prompt, F5 to generate") != nil else { return }
        await studio.quit()
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs) == [live])
    }
}
