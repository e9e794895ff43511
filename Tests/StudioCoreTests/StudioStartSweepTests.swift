import Foundation
import Testing

/// The studio's start sweeps its outputs folder as `generate` does: a dead writer's old `.partial` goes, a live
/// process's stays.
@Suite struct StudioStartSweepTests {
    @Test(.enabled(if: TmuxStudio.tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func studioStartSweepsItsOutputsFolder() async throws {
        let data = Support.temporaryFolder(), outputs = Support.temporaryFolder()
        let (_, live) = try Support.plantPartials(in: outputs, dead: "00001-1-x", live: "00002-1-y")
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' --threads 1 --output-dir '\(outputs)'", environment: ["XDG_DATA_HOME": data])
        guard await studio.waitFor("Type a prompt, F5 to generate") != nil else { return }
        await studio.quit()
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs) == [live])
    }
}
