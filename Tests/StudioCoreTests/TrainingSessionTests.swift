import Foundation
import ImageIO
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// The training panel against the real job on the tiny fixture model at 32²: a run stopped with Esc keeps its
/// checkpoint and Enter with the same settings resumes from it; a run that finishes writes its LoRA into the LoRA folder,
/// where the list finds it, with validation images on the way; bad data is one status line.
@Suite(.serialized) struct TrainingSessionTests {
    @MainActor
    final class Studio {
        let session: StudioSession
        let folder: String, data: String, loras: String
        let deadline = Date().addingTimeInterval(540)  // against hangs, inside the time limit; CI shares 2 cores among every suite

        init() throws {
            folder = Support.temporaryFolder()
            (data, loras) = (folder + "/data", folder + "/models/loras")
            try Self.writeData(data, sizes: [(40, 32), (32, 48), (32, 32), (36, 36)])
            var state = StudioState(model: Support.tinyModel, randomSeed: 1)
            (state.maxSequenceLength, state.t5) = (32, .on)
            for (field, value) in [(FieldID.width, "32"), (.height, "32"), (.seed, "5")] { state.set(field, value) }
            let store = try StudioStore(path: folder + "/studio.sqlite")
            // The LoRA folder does not exist yet: the first finished run makes it.
            let config = StudioConfig(model: Support.tinyModel, outputFolder: OutputFolder(path: folder + "/outputs"), store: .success(store),
                                      threads: 1, loraFolders: [loras, folder + "/models"])
            session = StudioSession(state: state, config: config)
        }

        /// PNGs of the given sizes (a different gradient each) with captions.
        static func writeData(_ folder: String, sizes: [(Int, Int)]) throws {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (i, (width, height)) in sizes.enumerated() {
                var pixels: [UInt8] = []
                for y in 0..<height { for x in 0..<width { pixels += [UInt8((x * 7 + i * 40) % 256), UInt8((y * 5 + i * 20) % 256), UInt8((x + y) * 3 % 256)] } }
                try Data(try PNGFile.encode(RGBImage(width: width, height: height, pixels: pixels))).write(to: URL(fileURLWithPath: folder + "/img\(i).png"))
                try Data("a striped thing number \(i)".utf8).write(to: URL(fileURLWithPath: folder + "/img\(i).txt"))
            }
        }

        func send(_ actions: Action...) { for action in actions { session.send(action) } }

        /// The panel's field set through its keys.
        func set(_ field: TrainingField, _ text: String) {
            while session.state.trainingPanel?.focus != field { send(.nextField) }
            send(.end, .deleteToLineStart)
            for c in text { send(.insert(String(c))) }
        }

        func wait(_ what: String, _ condition: @escaping (StudioState) -> Bool) async throws {
            let reached = await session.waitUntil(seconds: max(1, deadline.timeIntervalSinceNow), condition)
            try #require(reached, "timed out waiting for \(what): \(session.state.status.text)")
        }

        func waitUntilEnded() async throws {
            try await wait("the job's end") { $0.training?.isActive == false }
            await session.settle()
        }
    }

    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func escKeepsTheCheckpointAndEnterResumesThenAFinishedRunJoinsTheList() async throws {
        let studio = try Studio()
        studio.send(.showTraining)
        studio.set(.data, studio.data)
        studio.set(.resolution, "32")
        // Far more steps than the test waits for: Esc lands long before the end, however slow the machine.
        studio.set(.steps, "1000")
        studio.set(.every, "500")
        studio.set(.learningRate, "1e-2")
        studio.send(.newline)
        let output = studio.loras + "/data.safetensors", checkpoint = studio.loras + "/data.checkpoint"
        #expect(studio.session.state.training?.request.output == output)
        try await studio.wait("step 2") { ($0.training?.step ?? 0) >= 2 || $0.training?.isActive == false }
        studio.send(.cancel)
        try await studio.waitUntilEnded()
        let stopped = try #require(studio.session.state.training)
        #expect(stopped.phase == .stopped, "\(studio.session.state.status.text)")
        #expect((2..<1000).contains(stopped.step) && stopped.checkpointStep == stopped.step && stopped.losses.count == stopped.step)
        #expect(studio.session.state.status.text.hasSuffix("resumes · checkpoint \(checkpoint)"), "\(studio.session.state.status.text)")
        #expect(FileManager.default.fileExists(atPath: checkpoint) && !FileManager.default.fileExists(atPath: output))

        // The same settings again: the job resumes at the checkpoint's step.
        studio.send(.newline)
        try await studio.wait("the resumed start") { $0.training?.phase == .training || $0.training?.isActive == false }
        #expect(studio.session.state.training?.firstStep == stopped.step, "\(studio.session.state.status.text)")
        try await studio.wait("a step after the resume") { ($0.training?.step ?? 0) > stopped.step || $0.training?.isActive == false }
        studio.send(.cancel)
        try await studio.waitUntilEnded()
        #expect(studio.session.state.training?.phase == .stopped && (studio.session.state.training?.step ?? 0) > stopped.step)

        // Another output, three steps, a validation image every two: it finishes and joins the LoRA list.
        studio.set(.output, "stripes")
        studio.set(.steps, "3")
        studio.set(.every, "2")
        studio.set(.validationPrompt, "a striped thing")
        studio.send(.newline)
        try await studio.waitUntilEnded()
        let state = studio.session.state
        let lora = studio.loras + "/stripes.safetensors"
        #expect(state.training?.phase == .finished, "\(state.status.text)")
        #expect(state.training?.losses.count == 3 && state.training?.losses.allSatisfy(\.isFinite) == true)
        #expect(FileManager.default.fileExists(atPath: lora) && FileManager.default.fileExists(atPath: studio.loras + "/stripes.checkpoint"))
        let entry = try #require(state.loras.first { $0.path == lora }, "not in the list: \(state.loras)")
        #expect(entry.name == "stripes" && entry.enabled && entry.layout == "diffusers" && !entry.hash.isEmpty)
        #expect(LoraCatalog.scan(folders: [studio.loras]).map(\.name).contains("stripes"))
        #expect(state.status.text.hasPrefix("Trained stripes (3 steps"), "\(state.status.text)")
        // Validation images at step 2 and at the end; the last one is in the panel's preview.
        #expect(FileManager.default.fileExists(atPath: studio.loras + "/stripes-step-2.png") && FileManager.default.fileExists(atPath: studio.loras + "/stripes-step-3.png"))
        #expect(state.training?.validation?.step == 3 && state.training?.validation?.image.width == 32)
        #expect(render(state, columns: 80, rows: 24).lines.contains { $0.contains("validation · step 3") })
    }

    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func badDataIsOneStatusLine() async throws {
        let studio = try Studio()
        let empty = studio.folder + "/empty", small = studio.folder + "/small"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try Studio.writeData(small, sizes: [(16, 40)])
        let cases = [(empty, "no images (.png, .jpg) in the data folder"), (studio.folder + "/missing", "cannot read the data folder"),
                     (small, "16×40 is smaller than the resolution 32")]
        studio.send(.showTraining)
        studio.set(.resolution, "32")
        studio.set(.steps, "2")
        studio.set(.output, "bad")
        for (folder, expected) in cases {
            studio.set(.data, folder)
            studio.send(.newline)
            try await studio.waitUntilEnded()
            let status = studio.session.state.status
            #expect(status.isError && status.text.contains(expected) && !status.text.contains("\n"), "\(folder): \(status.text)")
        }
        // A model that cannot train at that size: one line from the job too.
        studio.set(.data, studio.data)
        studio.set(.resolution, "128")
        studio.send(.newline)
        try await studio.waitUntilEnded()
        #expect(studio.session.state.status.text.contains("this model trains at multiples of 4 up to 64 pixels"), "\(studio.session.state.status.text)")
        #expect(!FileManager.default.fileExists(atPath: studio.loras + "/bad.safetensors"))
    }
}
