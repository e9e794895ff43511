import Foundation
import ImageIO
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// The LoRA list against the real engine on the tiny fixture model (tiny-sd3 and the peft LoRA of
/// scripts/fixtures/lora.py): the studio applies a LoRA with no reload; strength 0, off and removed give the base
/// image bit for bit; a recalled image brings its LoRA back (or names the missing file); `sd3 generate --params-from`
/// re-applies it the same way, to the same pixels.
@Suite(.serialized) struct LoraSessionTests {
    static let fixture = Support.packageRoot + "/Tests/SD3Tests/Fixtures/lora/style.kohya.safetensors"

    @MainActor
    final class Studio {
        let session: StudioSession
        let folder: String
        let deadline = Date().addingTimeInterval(400)  // against hangs; CI shares 2 cores among every suite

        init(folder: String) throws {
            self.folder = folder
            var state = StudioState(model: Support.tinyModel, randomSeed: 1)
            state.set(.prompt, "a red circle at the top left on a blue background")
            (state.maxSequenceLength, state.t5) = (32, .on)
            for (field, value) in [(FieldID.width, "32"), (.height, "32"), (.steps, "4"), (.seed, "11")] { state.set(field, value) }
            let store = try StudioStore(path: folder + "/studio.sqlite")
            let config = StudioConfig(model: Support.tinyModel, outputFolder: OutputFolder(path: folder + "/outputs"), store: .success(store),
                                      threads: 1, loraFolders: [folder + "/models/loras", folder + "/models"])
            session = StudioSession(state: state, config: config)
        }

        func send(_ actions: Action...) { for action in actions { session.send(action) } }
        func type(_ text: String) { for c in text { session.send(.insert(String(c))) } }

        func wait(_ what: String, _ condition: @escaping (StudioState) -> Bool) async throws {
            let reached = await session.waitUntil(seconds: max(1, deadline.timeIntervalSinceNow), condition)
            try #require(reached, "timed out waiting for \(what): \(session.state.status.text)")
        }

        /// F5, then the saved image and its record.
        func generate() async throws -> (image: RGBImage, record: HistoryRecord) {
            let before = session.state.current?.id
            send(.generate)
            try #require(session.state.isRunning, "did not start: \(session.state.status.text)")
            try await wait("the image") { state in
                if case .failed = state.job { return true }
                return state.current != nil && state.current?.id != before
            }
            let record = try #require(session.state.current, "not saved: \(session.state.status.text)")
            try #require(record.id != before, "failed: \(session.state.status.text)")
            return (try PNGFile.read(record.file).image, record)
        }
    }

    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func offZeroAndRemovedGiveTheBaseImageWithoutReloading() async throws {
        let studio = try Studio(folder: Support.temporaryFolder())
        let base = try await studio.generate()
        #expect(base.record.metadata.loras == nil)

        studio.send(.showLoras)
        studio.type(Self.fixture)
        studio.send(.newline)
        try await studio.wait("the LoRA read") { $0.loras.count == 1 }
        #expect(studio.session.state.loras[0] == LoraEntry(name: "style.kohya", path: Self.fixture, hash: LoraFile.shortHash(path: Self.fixture), layout: "kohya"))
        let styled = try await studio.generate()
        #expect(ExploreSessionTests.maxDifference(styled.image, base.image) > 0, "the LoRA changed nothing")
        #expect(styled.record.metadata.loras == [.init(name: "style.kohya", strength: 1, hash: LoraFile.shortHash(path: Self.fixture), path: Self.fixture)])
        #expect(styled.record.metadata.loraMode == "run-time")

        for _ in 0..<20 { studio.send(.left) }
        #expect(studio.session.state.loras[0].strength == 0)
        let zero = try await studio.generate()
        #expect(ExploreSessionTests.maxDifference(zero.image, base.image) == 0, "strength 0 is not the base image")
        for _ in 0..<20 { studio.send(.right) }
        let again = try await studio.generate()
        #expect(ExploreSessionTests.maxDifference(again.image, styled.image) == 0, "back at 1 is not the first LoRA image")
        studio.send(.insert(" "))
        let off = try await studio.generate()
        #expect(ExploreSessionTests.maxDifference(off.image, base.image) == 0, "turned off is not the base image")
        studio.send(.insert(" "), .delete)
        #expect(studio.session.state.loras.isEmpty)
        let removed = try await studio.generate()
        #expect(ExploreSessionTests.maxDifference(removed.image, base.image) == 0, "removed is not the base image")
        #expect(await studio.session.engine.loadCount == 1, "changing LoRAs reloaded the model")

        // History recall (F4, Enter on the LoRA image) brings the LoRA back at its strength: the same image again.
        studio.send(.cancel, .showHistory)
        try await studio.wait("the history") { $0.browser?.records?.count == 6 }
        studio.send(.down, .down, .down, .down)
        #expect(studio.session.state.browser?.current?.id == styled.record.id)
        studio.send(.newline)
        try await studio.wait("the recalled LoRA") { $0.pendingRecall == nil && !$0.loras.isEmpty }
        #expect(!studio.session.state.status.isError && studio.session.state.status.text.hasSuffix("· LoRA style.kohya 1"), "\(studio.session.state.status.text)")
        let recalled = try await studio.generate()
        #expect(ExploreSessionTests.maxDifference(recalled.image, styled.image) == 0, "the recalled LoRA image differs")
        #expect(await studio.session.engine.loadCount == 1)

        // sd3 generate --params-from applies the recorded LoRA the recorded way (run-time): the same pixels.
        let output = studio.folder + "/params-from.png"
        let result = run(TmuxStudio.sd3, ["generate", "--params-from", styled.record.file, "--threads", "1", "-o", output],
                         environment: ["XDG_CONFIG_HOME": studio.folder + "/config", "XDG_DATA_HOME": studio.folder + "/data"])
        #expect(result.status == 0 && result.output.contains("LoRA style.kohya at 1 from \(Self.fixture)"), "\(result.output)")
        let cli = try PNGFile.read(output)
        #expect(ExploreSessionTests.maxDifference(cli.image, styled.image) == 0, "--params-from differs from the studio's LoRA image")
        // sd3 generate --lora merges the LoRA into the weights (W + s·B·A): the same image within rounding.
        let merged = run(TmuxStudio.sd3, ["generate", "--model", Support.tinyModel, "-p", studio.session.state.text(.prompt), "-W", "32", "-H", "32",
                                          "--steps", "4", "--seed", "11", "--max-sequence-length", "32", "--threads", "1", "--lora", Self.fixture,
                                          "-o", studio.folder + "/merged.png"],
                         environment: ["XDG_CONFIG_HOME": studio.folder + "/config", "XDG_DATA_HOME": studio.folder + "/data"])
        #expect(merged.status == 0, "\(merged.output)")
        let difference = ExploreSessionTests.maxDifference(try PNGFile.read(studio.folder + "/merged.png").image, styled.image)
        // 0 on the fixture here; the two sums round differently, so one level is allowed.
        #expect(difference <= 1, "merged and run-time LoRA images: max pixel difference \(difference)")
    }

    /// A LoRA recorded in a PNG whose file has gone: named in the status line, and no image is made until it is
    /// found or turned off. Put in the LoRA folder under its name, it is found again.
    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func aMissingLoraIsNamedAndFoundAgainByName() async throws {
        let folder = Support.temporaryFolder()
        let studio = try Studio(folder: folder)
        let copy = folder + "/elsewhere/mine.safetensors"
        try FileManager.default.createDirectory(atPath: folder + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: copy)
        studio.send(.showLoras)
        studio.type(copy)
        studio.send(.newline)
        try await studio.wait("the LoRA read") { $0.loras.count == 1 }
        studio.send(.left, .left)
        let made = try await studio.generate()
        try FileManager.default.removeItem(atPath: copy)
        studio.send(.delete, .cancel)

        studio.send(.openRecall)
        studio.type(made.record.file)
        studio.send(.newline)
        try await studio.wait("the recall") { $0.pendingRecall == nil && !$0.loras.isEmpty }
        let status = studio.session.state.status
        #expect(status.isError && status.text.contains("LoRA mine not found (not at \(copy) nor in \(folder)/models/loras)"), "\(status.text)")
        studio.send(.generate)
        #expect(!studio.session.state.isRunning && studio.session.state.status.text.hasPrefix("LoRA mine is not on this machine"))
        let environment = ["XDG_CONFIG_HOME": folder + "/config", "XDG_DATA_HOME": folder + "/data"]
        let cli = run(TmuxStudio.sd3, ["generate", "--params-from", made.record.file, "--threads", "1", "-o", folder + "/cli.png"], environment: environment)
        #expect(cli.status != 0 && cli.output.contains("was made with LoRA mine (hash \(LoraFile.shortHash(path: Self.fixture))), not found at \(copy) nor in \(folder)/data/sd3-studio/models/loras"),
                "\(cli.output)")

        // In the LoRA folder under its recorded name: found by name, the same image.
        try FileManager.default.createDirectory(atPath: folder + "/models/loras", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: folder + "/models/loras/mine.safetensors")
        studio.send(.openRecall)
        studio.type(made.record.file)
        studio.send(.newline)
        try await studio.wait("the recall") { $0.pendingRecall == nil && $0.loras.first?.path != nil }
        #expect(studio.session.state.loras.map(\.strength) == [0.9] && !studio.session.state.status.isError, "\(studio.session.state.status.text) \(studio.session.state.loras)")
        let again = try await studio.generate()
        #expect(ExploreSessionTests.maxDifference(again.image, made.image) == 0)
        try FileManager.default.createDirectory(atPath: folder + "/data/sd3-studio/models/loras", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: folder + "/data/sd3-studio/models/loras/mine.safetensors")
        let found = run(TmuxStudio.sd3, ["generate", "--params-from", made.record.file, "--threads", "1", "-o", folder + "/cli.png"], environment: environment)
        #expect(found.status == 0, "\(found.output)")
        #expect(ExploreSessionTests.maxDifference(try PNGFile.read(folder + "/cli.png").image, made.image) == 0)
    }

    /// Bad LoRA files: one line in the status line naming the file and the problem; the studio keeps running.
    @MainActor
    @Test(.timeLimit(.minutes(10)))
    func badLorasAreOneLineErrors() async throws {
        let folder = Support.temporaryFolder()
        let studio = try Studio(folder: folder)
        func add(_ path: String) async throws -> Status {
            studio.send(.showLoras)
            if studio.session.state.loraPanel == nil { studio.send(.showLoras) }
            studio.type(path)
            studio.send(.newline)
            try await studio.wait("an answer") { !$0.status.text.hasPrefix("Reading LoRA") }
            return studio.session.state.status
        }
        let missing = try await add(folder + "/nope.safetensors")
        #expect(missing.isError && missing.text == "LoRA \(folder)/nope.safetensors: no such file", "\(missing.text)")
        let byName = try await add("nope")
        #expect(byName.isError && byName.text == "LoRA nope: no such file nor nope.safetensors in \(folder)/models/loras or \(folder)/models")
        let flux = try write(folder + "/flux.safetensors", [("transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight", [4, 8])])
        let fluxStatus = try await add(flux)
        #expect(fluxStatus.isError && fluxStatus.text.hasPrefix("\(flux): a LoRA for Flux, not SD3"), "\(fluxStatus.text)")
        try "not safetensors".write(toFile: folder + "/text.safetensors", atomically: true, encoding: .utf8)
        let text = try await add(folder + "/text.safetensors")
        #expect(text.isError && text.text.hasPrefix("LoRA \(folder)/text.safetensors: "), "\(text.text)")
        #expect(studio.session.state.loras.isEmpty)
        // An SD3.5 Large LoRA reads fine but does not fit the model: the generation stops with the engine's message.
        let large = try write(folder + "/large.safetensors", [("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", [4, 2432]),
                                                              ("transformer.transformer_blocks.0.attn.to_q.lora_B.weight", [2432, 4])])
        let read = try await add(large)
        #expect(!read.isError && studio.session.state.loras.count == 1, "\(read.text)")
        studio.send(.generate)
        try await studio.wait("the failure") { if case .failed = $0.job { return true } else { return false } }
        let failure = studio.session.state.status
        #expect(failure.isError && !failure.text.contains("\n"))
        #expect(failure.text == "\(large): LoRA key transformer.transformer_blocks.0.attn.to_q gives transformer.transformer_blocks.0.attn.to_q.weight shape [2432, 2432], the model has [32, 32] (a LoRA for SD3.5 Large)",
                "\(failure.text)")
        // Turned off, the next image is made, by the model already loaded.
        studio.send(.insert(" "))
        _ = try await studio.generate()
        #expect(await studio.session.engine.loadCount == 1)
    }

    /// A .safetensors of zeros with these tensors.
    func write(_ path: String, _ tensors: [(String, [Int])]) throws -> String {
        let header = tensors.reduce(into: (json: [String: Any](), offset: 0)) { result, tensor in
            let bytes = tensor.1.reduce(4, *)
            result.json[tensor.0] = ["dtype": "F32", "shape": tensor.1, "data_offsets": [result.offset, result.offset + bytes]]
            result.offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header.json, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data(withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) })
        data.append(json)
        data.append(Data(count: header.offset))
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// The LoRA list as a user drives it in the studio under tmux: F9, a file from the LoRA folder, a strength, an image
/// that records it.
@Suite(.serialized) struct LoraEndToEndTests {
    @Test(.enabled(if: TmuxStudio.tmux != nil, "tmux is not installed (make deps installs it)"), .timeLimit(.minutes(10)))
    func pickALoraSetItsStrengthAndGenerate() async throws {
        let data = Support.temporaryFolder()
        try FileManager.default.createDirectory(atPath: data + "/sd3-studio/models/loras", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: LoraSessionTests.fixture, toPath: data + "/sd3-studio/models/loras/style.safetensors")
        let studio = TmuxStudio()
        defer { studio.stop() }
        studio.start("--model '\(Support.tinyModel)' -W 16 -H 16 --steps 3 --seed 11 --threads 1", environment: ["XDG_DATA_HOME": data])
        guard await studio.waitFor("Type a prompt, F5 to generate") != nil else { return }
        studio.type("a red circle")
        studio.keys("F9")
        guard await studio.waitFor("LoRAs 0 on of 0", "+           style") != nil else { return }
        studio.keys("Enter")
        guard await studio.waitFor("on    1.00  style", "LoRA style (kohya,") != nil else { return }
        studio.keys("Left", "Left")
        guard await studio.waitFor("on    0.90  style") != nil else { return }
        studio.keys("F5")
        guard await studio.waitFor("Saved ") != nil else { return }
        studio.keys("Escape")
        guard await studio.waitFor("Settings · LoRA style 0.9") != nil else { return }
        await studio.quit()
        let outputs = data + "/sd3-studio/outputs"
        let file = try #require(((try? FileManager.default.contentsOfDirectory(atPath: outputs)) ?? []).first)
        let png = try PNGFile.read(outputs + "/" + file)
        let parameters = png.text.first { $0.key == "parameters" }?.value ?? ""
        #expect(parameters.contains("Lora hashes: \"style: \(LoraFile.shortHash(path: LoraSessionTests.fixture))\""), "\(parameters)")
        #expect(png.text.first { $0.key == "sd3-studio" }?.value.contains("\"strength\":0.9") == true)
    }
}
