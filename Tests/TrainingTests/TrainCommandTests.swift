import Foundation
import ImageIO
import ImageMetadata
import SafeTensors
import SD3
import Tensors
import Testing
@testable import Training

/// `sd3 train-lora` as a separate process (the sd3 binary built beside this test bundle) on the tiny SD3 pipeline
/// with a generated data folder of four small PNGs; its LoRA is checked against `sd3 generate --lora` and against the
/// Training target's own loop, an interrupted run against an uninterrupted one.
@Suite(.serialized) struct TrainCommandTests {
    static let tiny = URL(fileURLWithPath: LoraOutputTests.transformerPath).deletingLastPathComponent().deletingLastPathComponent().path

    static var sd3: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sd3").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/.build/debug/sd3"
    }

    /// Runs sd3 to the end: exit status, standard output, standard error.
    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sd3)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["XDG_DATA_HOME": NSTemporaryDirectory() + "sd3-train-command-data"]) { $1 }
        let (out, err) = (Pipe(), Pipe())
        (process.standardOutput, process.standardError) = (out, err)
        try process.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile(), outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// Four PNGs (different sizes, all at least 32 on the short side) with captions.
    static func dataFolder(_ name: String) throws -> String {
        let data = LoraOutputTests.folder(name)
        for (i, size) in [(40, 32), (32, 48), (64, 64), (36, 36)].enumerated() {
            try Data(try PNGFile.encode(TrainingDataTests.image(size.0, size.1))).write(to: URL(fileURLWithPath: data + "/img\(i).png"))
            try Data("a striped thing number \(i)".utf8).write(to: URL(fileURLWithPath: data + "/img\(i).txt"))
        }
        return data
    }

    static func train(data: String, output: String, steps: Int, extra: [String] = []) -> [String] {
        ["train-lora", "--model", tiny, "--data", data, "--output", output, "--steps", "\(steps)", "--resolution", "32",
         "--seed", "5", "--threads", "1", "--lr", "1e-2"] + extra
    }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    @Test func threeStepsWriteALoraThatGenerateLoadsAndThatChangesTheImage() throws {
        let data = try Self.dataFolder("command-data"), out = LoraOutputTests.folder("command-out")
        let lora = out + "/stripes.safetensors"
        let started = Date()
        let trained = try Self.run(Self.train(data: data, output: lora, steps: 3, extra: ["--validation-prompt", "a striped thing", "--validation-every", "2"]))
        let seconds = Date().timeIntervalSince(started)
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stdout == lora + "\n")
        #expect(trained.stderr.contains("step 3/3") && trained.stderr.contains("loss") && trained.stderr.contains("s/step"), "\(trained.stderr)")
        #expect(FileManager.default.fileExists(atPath: out + "/stripes.checkpoint"))
        // Validation images at step 2 and at the end, each recording the LoRA of its step at strength 1.
        for step in [2, 3] {
            let text = try PNGFile.read(out + "/stripes-step-\(step).png").text
            let metadata = try JSONDecoder().decode(ImageMetadata.self, from: Data((text.first { $0.key == "sd3-studio" }?.value ?? "").utf8))
            #expect(metadata.prompt == "a striped thing" && metadata.width == 32 && metadata.seed == 5)
            #expect(metadata.loras?.map(\.name) == ["stripes-step-\(step)"] && metadata.loras?.first?.strength == 1, "\(String(describing: metadata.loras))")
            #expect(text.contains { $0.key == "sd3-train-lora" && $0.value.hasPrefix("step \(step) of 3") })
        }
        #expect(!FileManager.default.fileExists(atPath: out + "/stripes-step-1.png"))
        let file = try SafeTensorsFile(path: lora)
        #expect(file.metadata["lora_adapter_metadata"]?.contains("\"transformer.r\": 4") == true)
        print("TrainCommandTests: 3 steps at 32² on the tiny model in \(String(format: "%.2f", seconds)) s (process included)")

        func generate(_ extra: [String], _ name: String) throws -> RGBImage {
            let made = try Self.run(["generate", "--model", Self.tiny, "-p", "a striped thing", "-W", "32", "-H", "32", "--steps", "4",
                                     "--seed", "3", "--threads", "1", "--no-history", "-o", out + "/" + name] + extra)
            #expect(made.status == 0, "\(made.stderr)")
            return try PNGFile.read(out + "/" + name).image
        }
        let base = try generate([], "base.png"), with = try generate(["--lora", lora], "lora.png")
        let changed = zip(base.pixels, with.pixels).filter { $0 != $1 }.count
        #expect(changed > 0, "the LoRA left every pixel as it was")
        let recorded = try PNGFile.read(out + "/lora.png").text.first { $0.key == "sd3-studio" }?.value ?? ""
        #expect(recorded.contains("stripes"), "\(recorded)")
        print("TrainCommandTests: the LoRA changed \(changed) of \(base.pixels.count) channel values")
    }

    /// SIGINT once step 2 is reported: the run stops between steps with a checkpoint, and `--resume` ends with the
    /// LoRA bytes of a run that was never stopped.
    @Test func interruptedRunResumesToTheUninterruptedBytes() throws {
        let data = try Self.dataFolder("resume-data")
        let whole = LoraOutputTests.folder("resume-whole"), parts = LoraOutputTests.folder("resume-parts")
        let steps = 60
        let reference = try Self.run(Self.train(data: data, output: whole + "/a.safetensors", steps: steps))
        #expect(reference.status == 0, "\(reference.stderr)")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.sd3)
        process.arguments = Self.train(data: data, output: parts + "/a.safetensors", steps: steps)
        let err = Pipe()
        (process.standardError, process.standardOutput) = (err, FileHandle.nullDevice)
        try process.run()
        var text = ""
        while !text.contains("step 2/") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        process.interrupt()
        text += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130, "\(text)")
        #expect(text.contains("stopped after step") && text.contains("--resume"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: parts + "/a.safetensors"))
        let stopped = text.range(of: "stopped after step ").flatMap { Int(text[$0.upperBound...].prefix { $0.isNumber }) } ?? 0
        #expect((2..<steps).contains(stopped), "\(text)")

        let resumed = try Self.run(Self.train(data: data, output: parts + "/a.safetensors", steps: steps, extra: ["--resume", parts + "/a.checkpoint"]))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resumed from") && resumed.stderr.contains("at step \(stopped)"), "\(resumed.stderr)")
        #expect(try Self.bytes(parts + "/a.safetensors") == (try Self.bytes(whole + "/a.safetensors")))
        print("TrainCommandTests: stopped after step \(stopped) of \(steps), resumed to the same bytes")
    }

    /// The command's LoRA equals the Training target's loop run here on the same folder, seed and settings: the
    /// VAE posteriors, the frozen encoders' embeddings (all three loaded together here, the command loads them in
    /// turn), the peft init and the loop, bit for bit.
    /// With the constant lr and with a warmed-up cosine schedule (`--lr-scheduler`, `--lr-warmup-steps`).
    @Test(arguments: [LearningRateSchedule.Kind.constant, .cosine])
    func theCommandAddsNoNumericalDrift(_ kind: LearningRateSchedule.Kind) throws {
        let data = try Self.dataFolder("drift-data-\(kind.rawValue)"), out = LoraOutputTests.folder("drift-out-\(kind.rawValue)")
        let steps = 5
        let made = try Self.run(Self.train(data: data, output: out + "/a.safetensors", steps: steps,
                                           extra: ["--rank", "2", "--alpha", "3", "--lr-scheduler", kind.rawValue, "--lr-warmup-steps", "2"]))
        #expect(made.status == 0, "\(made.stderr)")

        let compute = try Compute(backend: .oneDNN, threads: 1)
        let examples = try TrainingData(folder: data, resolution: 32, instancePrompt: nil).examples
        let vaeFolder = try ComponentFolder(Self.tiny + "/vae")
        let vaeConfig = try vaeFolder.config(AutoencoderKLConfig.self)
        let vae = try AutoencoderKL(config: vaeConfig, weights: try vaeFolder.weights(), precision: .fp32)
        let posteriors = try examples.flatMap { e in
            let (mean, logvar) = try vae.encode(Tensor(shape: [1, 3, 32, 32], data: e.pixels), compute: compute)
            return LatentPosterior.split(mean: mean, logvar: logvar)
        }
        let folder = try ComponentFolder(Self.tiny + "/transformer")
        let config = try folder.config(SD3TransformerConfig.self)
        let encoder = try PromptEncoder(model: Self.tiny, jointAttentionDim: config.jointAttentionDim, t5: .on, precision: .fp32)
        let conditionings = try examples.map { try encoder.encode(prompts: [$0.caption], negative: nil, guidance: false, maxSequenceLength: 77, compute: compute) }
        var generator = TorchCPUGenerator(seed: 5)
        let lora = try TrainableLora(rank: 2, alpha: 3, targets: TrainableLora.defaultTargets,
                                     linears: TransformerLinears.list(try SafeTensorsFile(path: LoraOutputTests.transformerPath)), generator: &generator)
        let parameters = lora.makeParameters()
        let model = try TrainableSD3Transformer(config: config, weights: try folder.weights(), precision: .fp32, loras: parameters)
        let gradients = TransformerGradients(model: model, parameters: parameters, compute: compute, checkpointing: true,
                                             text: conditionings.map { $0.promptEmbeds.reshaped([$0.promptEmbeds.dim(1), $0.promptEmbeds.dim(2)]) },
                                             pooled: conditionings.map { $0.pooled.reshaped([$0.pooled.dim(1)]) })
        let settings = TrainingSettings(maxTrainSteps: steps, schedule: .init(kind: kind, baseLR: 1e-2, warmupSteps: 2, trainingSteps: steps),
                                        shiftFactor: vaeConfig.shiftFactor ?? 0, scalingFactor: vaeConfig.scalingFactor)
        var loop = TrainingLoop(settings: settings, sigmaSchedule: try TrainingSchedule(config: try ModelSource(Self.tiny).schedulerConfig()),
                                posteriors: posteriors, lora: lora, generator: generator)
        while !loop.isFinished { _ = try loop.runStep { try gradients($0, $1) } }

        let file = try SafeTensorsFile(path: out + "/a.safetensors")
        #expect(file.names.count == 2 * loop.lora.modules.count)
        var differing = 0
        for m in loop.lora.modules {
            let down = try file.tensor("transformer.\(m.name).lora_A.weight").data
            let up = try file.tensor("transformer.\(m.name).lora_B.weight").data
            if down != m.down || up != m.up { differing += 1 }
        }
        #expect(differing == 0, "\(differing) of \(loop.lora.modules.count) modules differ from the Training target's loop")
        #expect(loop.lora.modules.contains { $0.up.contains { $0 != 0 } })
    }
}
