import Foundation
import ImageIO
import ImageMetadata
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// Ctrl-O reads the PNG off the main actor: the studio keeps answering while it reads, Esc drops the answer, and a
/// FIFO or folder typed as the path is one error line, never a frozen screen.
@Suite struct RecallCancelTests {
    @Test func escDropsARecallInProgress() {
        var state = Support.state(prompt: "draft")
        _ = reduce(&state, .openRecall)
        _ = reduce(&state, .insert("/tmp/a.png"))
        #expect(reduce(&state, .newline).effects == [.recall(path: "/tmp/a.png")])
        #expect(state.recalling == "/tmp/a.png" && state.status.text == "Reading /tmp/a.png… (Esc cancels)")
        #expect(reduce(&state, .cancel).effects == [.cancelRecall])
        #expect(state.recalling == nil && state.status.text == "Recall cancelled")
        // An answer that arrives after Esc changes nothing.
        _ = reduce(&state, .recalled(RecalledParameters(source: .a1111, prompt: "late"), from: "a.png"))
        #expect(state.text(.prompt) == "draft" && state.status.text == "Recall cancelled")
    }

    @MainActor
    static func session() throws -> StudioSession {
        let folder = Support.temporaryFolder()
        let store = try StudioStore(path: folder + "/studio.sqlite")
        return StudioSession(state: Support.state(prompt: "draft"),
                             config: StudioConfig(model: nil, outputFolder: OutputFolder(path: folder + "/outputs"), store: .success(store), threads: 1))
    }

    @MainActor
    func recall(_ path: String, in session: StudioSession) {
        session.send(.openRecall)
        session.send(.insert(path))
        session.send(.newline)
    }

    @MainActor
    @Test(.timeLimit(.minutes(10))) func aFIFOOrFolderIsOneErrorLine() async throws {
        let folder = Support.temporaryFolder()
        #expect(mkfifo(folder + "/fifo.png", 0o600) == 0)
        for (path, says) in [(folder + "/fifo.png", "is a FIFO"), (folder, "is a folder")] {
            let session = try Self.session()
            recall(path, in: session)
            #expect(session.state.recalling == path)
            await session.settle()
            #expect(session.state.recalling == nil && session.state.status.isError && session.state.status.text.contains("\(path): \(says)"),
                    "\(session.state.status.text)")
            #expect(session.state.text(.prompt) == "draft")
        }
    }

    @MainActor
    @Test func aRecallFillsTheFieldsUnlessCancelled() async throws {
        let png = RecallFixtures.folder + "/a1111.png"
        let expected = try MetadataReader.read(png)
        let session = try Self.session()
        recall(png, in: session)
        await session.settle()
        #expect(session.state.text(.prompt) == expected.prompt && session.state.recalling == nil)
        let cancelled = try Self.session()
        recall(png, in: cancelled)
        cancelled.send(.cancel)
        await cancelled.settle()
        #expect(cancelled.state.text(.prompt) == "draft" && cancelled.state.status.text == "Recall cancelled")
    }
}
