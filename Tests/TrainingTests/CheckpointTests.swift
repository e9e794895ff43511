import Foundation
import FuzzSupport
import SafeTensors
import SD3
import Testing
@testable import Training

/// Training checkpoints: a resumed run continues exactly, and a checkpoint of another model, rank or alpha, or a
/// damaged one, is refused in one line.
@Suite struct CheckpointTests {
    static func describe(_ lora: TrainableLora, step: Int, generator: TorchCPUGenerator, fingerprint: String = "abc123") -> TrainingCheckpoint {
        TrainingCheckpoint(modelName: "tiny-sd3", modelFingerprint: fingerprint, rank: lora.rank, alpha: lora.alpha, targets: lora.targets,
                           modules: lora.modules.map { .init(name: $0.name, inFeatures: $0.inFeatures, outFeatures: $0.outFeatures) },
                           step: step, schedule: .init(kind: .cosine, baseLR: 1e-3, warmupSteps: 2, trainingSteps: 12),
                           density: .init(scheme: .logitNormal), preconditionOutputs: true, maxGradNorm: 1, batchSize: 1, accumulationSteps: 1,
                           adamBeta1: 0.9, adamBeta2: 0.999, adamWeightDecay: 1e-4, adamEpsilon: 1e-8,
                           generator: generator.snapshot, epoch: 0, batchInEpoch: step)
    }

    /// A stand-in training step on the real pieces: draw σ and fake gradients from the generator, clip, AdamW.
    static func step(_ lora: inout TrainableLora, _ optimizer: inout AdamW, _ generator: inout TorchCPUGenerator, schedule: LearningRateSchedule) {
        let u = TimestepDensity().sample(batchSize: 1, generator: &generator)
        var gradients = lora.parameterCounts.map { generator.randn([$0]).map { $0 * u[0] } }
        clipGradientNorm(&gradients, maxNorm: 1)
        var parameters = lora.parameters
        optimizer.update(parameters: &parameters, gradients: gradients, lr: schedule.lr(at: optimizer.step))
        lora.parameters = parameters
    }

    @Test func resumeContinuesExactly() throws {
        let linears = TransformerLinears.list(try SafeTensorsFile(path: LoraOutputTests.transformerPath))
        var generator = TorchCPUGenerator(seed: 11)
        var lora = try TrainableLora(rank: 4, alpha: 4, targets: TrainableLora.defaultTargets, linears: linears, generator: &generator)
        var optimizer = AdamW(parameterCounts: lora.parameterCounts)
        let schedule = LearningRateSchedule(kind: .cosine, baseLR: 1e-3, warmupSteps: 2, trainingSteps: 12)
        let path = LoraOutputTests.folder("checkpoint") + "/checkpoint.safetensors"
        for s in 0..<12 {
            if s == 5 { try Self.describe(lora, step: s, generator: generator).write(to: path, lora: lora, optimizer: optimizer) }
            Self.step(&lora, &optimizer, &generator, schedule: schedule)
        }
        let loaded = try TrainingCheckpoint.read(path, modelName: "tiny-sd3", modelFingerprint: "abc123", rank: 4, alpha: 4)
        #expect(loaded.checkpoint.step == 5 && loaded.optimizer.step == 5)
        var (resumed, resumedOptimizer, resumedGenerator) = (loaded.lora, loaded.optimizer, loaded.generator)
        for _ in 5..<12 { Self.step(&resumed, &resumedOptimizer, &resumedGenerator, schedule: loaded.checkpoint.schedule) }
        #expect(resumed == lora)
        #expect(resumedOptimizer == optimizer)
        #expect(resumedGenerator.snapshot == generator.snapshot)
    }

    @Test func otherModelRankOrDamageIsOneLine() throws {
        let linears = TransformerLinears.list(try SafeTensorsFile(path: LoraOutputTests.transformerPath))
        var generator = TorchCPUGenerator(seed: 2)
        let lora = try TrainableLora(rank: 4, alpha: 4, targets: ["attn.to_q"], linears: linears, generator: &generator)
        let folder = LoraOutputTests.folder("refusals")
        let path = folder + "/checkpoint.safetensors"
        try Self.describe(lora, step: 3, generator: generator).write(to: path, lora: lora, optimizer: AdamW(parameterCounts: lora.parameterCounts))
        func refusal(_ path: String, fingerprint: String = "abc123", rank: Int = 4, alpha: Double = 4) -> String {
            do {
                _ = try TrainingCheckpoint.read(path, modelName: "other-model", modelFingerprint: fingerprint, rank: rank, alpha: alpha)
                return "accepted"
            } catch { return "\(error)" }
        }
        let cases = [
            (refusal(path, fingerprint: "ffff00"), "belongs to model tiny-sd3 (abc123), not other-model (ffff00)"),
            (refusal(path, rank: 8), "has rank 4; this run asks for rank 8"),
            (refusal(path, alpha: 8), "has alpha 4; this run asks for alpha 8"),
            (refusal(folder + "/missing.safetensors"), "not a readable training checkpoint"),
        ]
        for (message, expected) in cases {
            #expect(message.contains(expected) && !message.contains("\n"), "\(message)")
        }
        // A LoRA file is not a checkpoint.
        try lora.write(to: folder + "/lora.safetensors")
        #expect(refusal(folder + "/lora.safetensors").contains("not an sd3 train-lora checkpoint"))
        // A truncated file (a copy cut short) is refused, not trusted.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: folder + "/cut.safetensors"))
        #expect(refusal(folder + "/cut.safetensors").contains("not a readable training checkpoint"))
        #expect(refusal(path) == "accepted")
    }

    /// Mutated checkpoints (header JSON and tensor bytes) are read or refused with a TrainingError; never a crash.
    @Test func mutatedCheckpointsAreRefusedNotTrusted() throws {
        let linears = TransformerLinears.list(try SafeTensorsFile(path: LoraOutputTests.transformerPath))
        var generator = TorchCPUGenerator(seed: 4)
        let lora = try TrainableLora(rank: 2, alpha: 2, targets: ["attn.to_q", "attn.to_k"], linears: linears, generator: &generator)
        let folder = LoraOutputTests.folder("fuzz")
        let path = folder + "/checkpoint.safetensors"
        try Self.describe(lora, step: 1, generator: generator).write(to: path, lora: lora, optimizer: AdamW(parameterCounts: lora.parameterCounts))
        let valid = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var mutator = Mutator(seed: 19, corpus: [valid])
        var (accepted, refused) = (0, 0)
        for i in 0..<400 {
            let case_ = folder + "/case\(i).safetensors"
            try Data(mutator.mutated()).write(to: URL(fileURLWithPath: case_))
            do {
                let loaded = try TrainingCheckpoint.read(case_, modelName: "tiny-sd3", modelFingerprint: "abc123", rank: 2, alpha: 2)
                #expect(loaded.lora.parameterCounts == loaded.optimizer.exp_avg.map(\.count))
                accepted += 1
            } catch let error as TrainingError {
                #expect(!"\(error)".contains("\n"))
                refused += 1
            }
            unlink(case_)
        }
        #expect(accepted + refused == 400 && refused > 0)
    }

    /// The model fingerprint: the same bytes anywhere give the same one; other weights under the same header do not.
    @Test func fingerprintTellsWeightsApart() throws {
        let original = LoraOutputTests.transformerPath
        let folder = LoraOutputTests.folder("fingerprint")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: original)))
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/copy.safetensors"))
        bytes[bytes.count - 1000] ^= 0x40  // one weight changed, the header the same
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/changed.safetensors"))
        let a = try ModelFingerprint.of(files: [original])
        #expect(a.count == 64)
        #expect(try ModelFingerprint.of(files: [folder + "/copy.safetensors"]) == a)
        #expect(try ModelFingerprint.of(files: [folder + "/changed.safetensors"]) != a)
        let fp16 = URL(fileURLWithPath: original).deletingLastPathComponent().appendingPathComponent("diffusion_pytorch_model.fp16.safetensors").path
        #expect(try ModelFingerprint.of(files: [fp16]) != a)
        #expect(throws: TrainingError.self) { try ModelFingerprint.of(files: [folder + "/missing.safetensors"]) }
    }

    @Test func atomicWriteReportsAFailureInOneLine() {
        do {
            try AtomicFile.write([1, 2, 3], to: "/nonexistent-folder/x.safetensors")
            Issue.record("wrote into a missing folder")
        } catch {
            #expect("\(error)" == "cannot write /nonexistent-folder/x.safetensors: create: No such file or directory")
        }
        // /dev/full fails every write with ENOSPC, as a full disk does (the temporary is created beside it in /dev).
        if getuid() == 0, FileManager.default.fileExists(atPath: "/dev/full") {
            let folder = LoraOutputTests.folder("full")
            symlink("/dev/full", folder + "/.x.safetensors.\(getpid()).partial")
            do {
                try AtomicFile.write([UInt8](repeating: 7, count: 1 << 16), to: folder + "/x.safetensors")
                Issue.record("a write to /dev/full succeeded")
            } catch {
                #expect("\(error)".contains("No space left on device"), "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: folder + "/x.safetensors"))
        }
    }
}
