import Foundation
import SafeTensors
import SD3
import Tensors

/// What a resumed run must share with the run that wrote the checkpoint, and what it continues from: one
/// safetensors file holding the LoRA (`lora.<module>.lora_A.weight` / `lora_B.weight`, F32), AdamW's moments
/// (`adamw.exp_avg.<i>`, `adamw.exp_avg_sq.<i>`, in `TrainableLora.parameters` order) and, in the header's
/// `sd3_train_lora_checkpoint` entry, this struct as JSON (step, generator state, lr schedule, settings, model).
/// Written atomically (AtomicFile), so a run killed while saving leaves the previous checkpoint whole.
public struct TrainingCheckpoint: Sendable, Equatable, Codable {
    public static let metadataKey = "sd3_train_lora_checkpoint"
    public static let formatVersion = 1

    public struct ModuleShape: Sendable, Equatable, Codable {
        public var name: String
        public var inFeatures: Int
        public var outFeatures: Int
    }

    public var version = TrainingCheckpoint.formatVersion
    /// The base model: a name for messages and a fingerprint that must match (the caller's choice, e.g. the SHA-256
    /// of the transformer's safetensors header, so a re-downloaded copy of the same weights still matches).
    public var modelName: String
    public var modelFingerprint: String
    public var rank: Int
    public var alpha: Double
    public var targets: [String]
    public var modules: [ModuleShape]
    /// Optimizer steps taken; also the lr schedule's position (LambdaLR's last_epoch).
    public var step: Int
    public var schedule: LearningRateSchedule
    public var density: TimestepDensity
    public var preconditionOutputs: Bool
    public var maxGradNorm: Double
    public var batchSize: Int
    public var accumulationSteps: Int
    public var adamBeta1: Double
    public var adamBeta2: Double
    public var adamWeightDecay: Double
    public var adamEpsilon: Double
    public var generator: TorchCPUGenerator.Snapshot
    /// Where the data order stands (the loop's: epoch and the position in that epoch's order).
    public var epoch: Int
    public var batchInEpoch: Int
    /// The current epoch's DataLoader order (drawn at its start), empty between epochs.
    public var epochOrder: [Int] = []

    /// Writes the checkpoint with the LoRA's and the optimizer's tensors.
    public func write(to path: String, lora: TrainableLora, optimizer: AdamW) throws {
        guard lora.modules.map({ ModuleShape(name: $0.name, inFeatures: $0.inFeatures, outFeatures: $0.outFeatures) }) == modules,
              optimizer.exp_avg.map(\.count) == lora.parameterCounts else {
            throw TrainingError.invalid("checkpoint: the LoRA's modules or the optimizer's state do not match the checkpoint's description")
        }
        var entries: [SafeTensorsWriter.Entry] = []
        for m in lora.modules {
            entries.append(.init("lora.\(m.name).lora_A.weight", Tensor(shape: [rank, m.inFeatures], data: m.down)))
            entries.append(.init("lora.\(m.name).lora_B.weight", Tensor(shape: [m.outFeatures, rank], data: m.up)))
        }
        for (i, count) in lora.parameterCounts.enumerated() {
            entries.append(.init("adamw.exp_avg.\(i)", Tensor(shape: [count], data: optimizer.exp_avg[i])))
            entries.append(.init("adamw.exp_avg_sq.\(i)", Tensor(shape: [count], data: optimizer.exp_avg_sq[i])))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(self), as: UTF8.self)
        try AtomicFile.write(SafeTensorsWriter(entries: entries, metadata: [Self.metadataKey: json]).encoded(), to: path)
    }

    /// Bounds a damaged or hostile header must not pass: sizes that would overflow or allocate without end,
    /// numbers that are not finite.
    var isSane: Bool {
        let limit = 1 << 40, features = 1 << 20
        let numbers = [alpha, maxGradNorm, adamBeta1, adamBeta2, adamWeightDecay, adamEpsilon, schedule.baseLR, schedule.numCycles,
                       density.logitMean, density.logitStd, density.modeScale]
        return (0...limit).contains(step) && (0...limit).contains(epoch) && (0...(1 << 24)).contains(batchInEpoch)
            && (1...(1 << 16)).contains(accumulationSteps) && (1...(1 << 16)).contains(batchSize)
            && (1...4096).contains(rank) && (1...100_000).contains(modules.count) && epochOrder.count <= 1 << 24
            && modules.allSatisfy { (1...features).contains($0.inFeatures) && (1...features).contains($0.outFeatures) }
            && numbers.allSatisfy(\.isFinite) && (0..<1).contains(adamBeta1) && (0..<1).contains(adamBeta2) && adamEpsilon > 0
            && maxGradNorm > 0 && (0...limit).contains(schedule.warmupSteps) && (0...limit).contains(schedule.trainingSteps)
    }

    /// The first setting in which this checkpoint's run differs from `settings` (a resumed run must continue the same
    /// schedule, σ density, loss, batching and clipping), as "NAME was X; this run has Y".
    public func difference(from settings: TrainingSettings) -> String? {
        let pairs: [(String, String, String)] = [
            ("the batch size", "\(batchSize)", "\(settings.batchSize)"),
            ("gradient accumulation", "\(accumulationSteps)", "\(settings.accumulationSteps)"),
            ("the lr schedule", "\(schedule.kind.rawValue)", "\(settings.schedule.kind.rawValue)"),
            ("the learning rate", "\(schedule.baseLR)", "\(settings.schedule.baseLR)"),
            ("the warm-up steps", "\(schedule.warmupSteps)", "\(settings.schedule.warmupSteps)"),
            ("the training steps", "\(schedule.trainingSteps)", "\(settings.schedule.trainingSteps)"),
            ("the cosine cycles", "\(schedule.numCycles)", "\(settings.schedule.numCycles)"),
            ("the weighting scheme", density.scheme.rawValue, settings.density.scheme.rawValue),
            ("the timestep density", "\(density.logitMean) \(density.logitStd) \(density.modeScale)",
             "\(settings.density.logitMean) \(settings.density.logitStd) \(settings.density.modeScale)"),
            ("precondition_outputs", "\(preconditionOutputs)", "\(settings.preconditionOutputs)"),
            ("the max gradient norm", "\(maxGradNorm)", "\(settings.maxGradNorm)"),
        ]
        return pairs.first { $0.1 != $0.2 }.map { "\($0.0) was \($0.1); this run has \($0.2)" }
    }

    /// A checkpoint read back: its description, the LoRA and the optimizer.
    public struct Loaded: Sendable {
        public let checkpoint: TrainingCheckpoint
        public let lora: TrainableLora
        public let optimizer: AdamW
        public let generator: TorchCPUGenerator
    }

    /// Reads `path` for a run on model `fingerprint` at `rank`; refuses, in one line, a checkpoint of another model,
    /// rank or alpha, or a damaged file.
    public static func read(_ path: String, modelName: String, modelFingerprint: String, rank: Int, alpha: Double) throws -> Loaded {
        func bad(_ reason: String) -> TrainingError { .checkpoint(path: path, reason: reason) }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw bad("not a readable training checkpoint (\(error))") }
        guard let json = file.metadata[metadataKey] else { throw bad("not an sd3 train-lora checkpoint (no \(metadataKey) in its header)") }
        let c: TrainingCheckpoint
        do { c = try JSONDecoder().decode(TrainingCheckpoint.self, from: Data(json.utf8)) } catch {
            throw bad("its \(metadataKey) entry is damaged")
        }
        guard c.version == formatVersion else { throw bad("checkpoint format \(c.version); this sd3 reads format \(formatVersion)") }
        guard c.modelFingerprint == modelFingerprint else {
            throw bad("belongs to model \(c.modelName) (\(c.modelFingerprint.prefix(12))), not \(modelName) (\(modelFingerprint.prefix(12))); resume with that model or start a new run")
        }
        guard c.rank == rank else { throw bad("has rank \(c.rank); this run asks for rank \(rank)") }
        guard c.alpha == alpha else { throw bad("has alpha \(TrainableLora.number(c.alpha)); this run asks for alpha \(TrainableLora.number(alpha))") }
        guard c.isSane else { throw bad("its step, data position, settings or module sizes are out of range") }
        guard let generator = TorchCPUGenerator(snapshot: c.generator) else { throw bad("its random generator state is damaged") }
        func values(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let info = file.info(name) else { throw bad("tensor \(name) is missing") }
            guard info.dtype == .f32, info.shape == shape else {
                throw bad("tensor \(name) is \(info.dtype.rawValue) \(info.shape), expected F32 \(shape)")
            }
            let data: [Float]
            do { data = try file.tensor(info).data } catch { throw bad("tensor \(name) is unreadable (\(error))") }
            guard data.allSatisfy(\.isFinite) else { throw bad("tensor \(name) holds NaN or infinity") }
            return data
        }
        var modules: [TrainableLora.Module] = []
        for m in c.modules {
            modules.append(.init(name: m.name, inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                                 down: try values("lora.\(m.name).lora_A.weight", [rank, m.inFeatures]),
                                 up: try values("lora.\(m.name).lora_B.weight", [m.outFeatures, rank])))
        }
        let lora = TrainableLora(rank: rank, alpha: alpha, targets: c.targets, modules: modules)
        var avg: [[Float]] = [], avgSq: [[Float]] = []
        for (i, count) in lora.parameterCounts.enumerated() {
            avg.append(try values("adamw.exp_avg.\(i)", [count]))
            avgSq.append(try values("adamw.exp_avg_sq.\(i)", [count]))
        }
        guard file.names.count == 2 * modules.count + 2 * avg.count else { throw bad("holds tensors this format does not define") }
        let optimizer = AdamW(step: c.step, exp_avg: avg, exp_avg_sq: avgSq, beta1: c.adamBeta1, beta2: c.adamBeta2,
                              weightDecay: c.adamWeightDecay, epsilon: c.adamEpsilon)
        return Loaded(checkpoint: c, lora: lora, optimizer: optimizer, generator: generator)
    }
}
