import Foundation
import ImageIO
import ImageMetadata
import RegularFiles
import SD3
import Tensors

/// One LoRA training run, as `sd3 train-lora` and the studio's training panel both run it: the data and the frozen
/// encoders' outputs computed once (each encoder freed after its use, so memory stays near inference's), then
/// TrainingLoop on TrainableSD3Transformer with checkpoints, validation images, progress reported per step, and a
/// stop asked for between steps ending the run with a checkpoint.
public struct LoraTrainingJob: Sendable {
    /// What `sd3 train-lora`'s flags (and the panel's fields) set; the defaults are the command's.
    public struct Settings: Sendable, Equatable {
        public var model: String
        public var data: String
        /// The LoRA file to write (NAME.safetensors) and the checkpoint (`checkpointPath(output:)` by default).
        public var output: String
        public var checkpoint: String
        /// A checkpoint to continue from (same model, rank, alpha, data and settings).
        public var resume: String?
        public var rank = 4
        /// nil: the rank, as the script passes lora_alpha=rank.
        public var alpha: Double?
        public var steps = 500
        public var lr = 1e-4
        public var lrScheduler = LearningRateSchedule.Kind.constant
        public var lrWarmupSteps = 500
        public var batch = 1
        public var accumulation = 1
        public var resolution = 512
        public var seed: UInt64
        public var maxSequenceLength = 77
        /// The caption of images without a .txt (of every image when `captionFiles` is false).
        public var instancePrompt: String?
        public var captionFiles = true
        /// nil: TrainableLora.defaultTargets.
        public var loraLayers: [String]?
        public var checkpointEvery = 100
        /// Drawn every `validationEvery` steps and at the end into NAME-step-N.png beside the output.
        public var validationPrompt: String?
        public var validationEvery = 50
        public var checkpointing = true

        public init(model: String, data: String, output: String, checkpoint: String? = nil, seed: UInt64) {
            (self.model, self.data, self.output, self.seed) = (model, data, output, seed)
            self.checkpoint = checkpoint ?? LoraTrainingJob.checkpointPath(output: output)
        }

        public var effectiveAlpha: Double { alpha ?? Double(rank) }
    }

    /// What a run reports as it goes, in order.
    public enum Event: Sendable {
        /// A line for the log: files skipped, the data's size and seed, where it resumed.
        case note(String)
        /// A slow part of the preparation starting: loading the model, encoding the images or the captions.
        case preparing(String)
        /// The loop begins at `step` (0, or a resumed checkpoint's step).
        case started(step: Int, steps: Int, images: Int)
        case step(StepProgress)
        case checkpoint(path: String, step: Int)
        /// A validation image, written to `path`.
        case validation(step: Int, image: RGBImage, path: String)
    }

    public struct StepProgress: Sendable, Equatable {
        public let step: Int
        public let steps: Int
        /// The step's loss (the script's logged one) and the mean over this run's steps.
        public let loss: Float
        public let meanLoss: Double
        /// Seconds per optimizer step over this run's steps (a resumed run counts from its start).
        public let secondsPerStep: Double
    }

    public enum Outcome: Sendable, Equatable {
        case finished(output: String, checkpoint: String, steps: Int)
        /// Stopped on request: the checkpoint holds `step` (nil: stopped before any step and no checkpoint existed).
        case stopped(step: Int, steps: Int, checkpoint: String?)
    }

    /// The steps ran but the LoRA could not be written (a full disk): the checkpoint holds it, so a rerun resumes.
    public struct OutputNotSaved: Error, CustomStringConvertible {
        public let reason: String
        public let checkpoint: String
        public var description: String { "\(reason); the checkpoint \(checkpoint) holds the trained LoRA" }
    }

    public let settings: Settings
    public let options: LoadOptions

    public init(settings: Settings, options: LoadOptions) {
        (self.settings, self.options) = (settings, options)
    }

    /// NAME.checkpoint beside NAME.safetensors.
    public static func checkpointPath(output: String) -> String {
        let url = URL(fileURLWithPath: output)
        return url.deletingPathExtension().path + ".checkpoint"
    }

    /// Every file the run writes, checked before any work, so nothing is computed that could not be saved: the
    /// output is a NAME.safetensors that is not a folder or device, and both its folder and the checkpoint's take a
    /// new file.
    public static func checkFiles(_ settings: Settings) throws {
        let output = settings.output
        guard output.hasSuffix(".safetensors"), (output as NSString).lastPathComponent != ".safetensors" else {
            throw TrainingError.invalid("the output must be a NAME.safetensors file, not '\(output)'")
        }
        try probeWritable(output)
        try probeWritable(settings.checkpoint)
        if let kind = RegularFile.kind(output) { throw TrainingError.invalid("the output \(output) is \(kind), not a file") }
    }

    /// The folder of `path` exists and takes a new file: one is created and removed (access(2) says yes to root on a
    /// folder where creating still fails, e.g. a read-only or special file system).
    static func probeWritable(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw TrainingError.invalid("\(path): the folder \(folder) does not exist")
        }
        let probe = folder + "/.sd3-train-lora-probe-\(getpid())-\(UUID().uuidString.prefix(8))"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TrainingError.invalid("\(path): the folder \(folder) is not writable (\(String(cString: strerror(errno))))") }
        close(fd)
        unlink(probe)
    }

    /// The run, on the caller's thread. `shouldStop` is asked between the preparation's parts and after every step;
    /// once it says yes the run writes a checkpoint (if the last step has none) and returns `.stopped`.
    public func run(shouldStop: () -> Bool = { false }, report: (Event) -> Void) throws -> Outcome {
        let s = settings
        report(.preparing("loading \(s.model)"))
        let pipeline = try StableDiffusion3Pipeline(path: s.model, options: options)
        let (multiple, config) = (pipeline.sizeMultiple, pipeline.transformerConfig)
        let maxSide = config.posEmbedMaxSize * multiple
        guard s.resolution % multiple == 0, s.resolution <= maxSide else {
            throw TrainingError.invalid("resolution \(s.resolution): this model trains at multiples of \(multiple) up to \(maxSide) pixels")
        }
        guard try pipeline.source.weights(.vae).contains("encoder.conv_in.weight") else {
            throw TrainingError.invalid("\(s.model): its VAE has no encoder (encoder.* weights), which training needs to encode the images")
        }
        // The checkpoint's model, rank, alpha and format are checked before any work; its settings and data position
        // once the data is read (TrainingLoop.restore).
        let fingerprint = try ModelFingerprint.of(files: try Self.transformerFiles(pipeline.source))
        let resumed = try s.resume.map {
            try TrainingCheckpoint.read($0, modelName: s.model, modelFingerprint: fingerprint, rank: s.rank, alpha: s.effectiveAlpha)
        }
        let data = try TrainingData(folder: s.data, resolution: s.resolution, instancePrompt: s.instancePrompt, captionFiles: s.captionFiles)
        if !data.ignored.isEmpty { report(.note("note: skipped \(data.ignored.count) other file(s) in \(s.data): \(data.ignored.prefix(3).joined(separator: ", "))")) }
        report(.note("\(data.examples.count) images at \(s.resolution)², seed \(s.seed)"))
        let stoppedEarly = Outcome.stopped(step: resumed?.checkpoint.step ?? 0, steps: s.steps, checkpoint: s.resume)
        if shouldStop() { return stoppedEarly }
        report(.preparing("encoding \(data.examples.count) images"))
        let posteriors = try Self.posteriors(data, pipeline: pipeline)
        pipeline.release(.vae)
        if shouldStop() { return stoppedEarly }
        report(.preparing("encoding the captions"))
        let (text, pooled, warnings) = try Self.embeddings(data.examples.map(\.caption), pipeline: pipeline, maxSequenceLength: s.maxSequenceLength)
        for warning in warnings { report(.note("note: \(warning)")) }
        if shouldStop() { return stoppedEarly }

        let weights = try pipeline.source.weights(.transformer)
        var generator = TorchCPUGenerator(seed: s.seed)
        let lora = try TrainableLora(rank: s.rank, alpha: s.effectiveAlpha, targets: s.loraLayers ?? TrainableLora.defaultTargets,
                                     linears: TransformerLinears.list(weights, layers: config.numLayers), generator: &generator)
        let parameters = lora.makeParameters()
        let transformer = try TrainableSD3Transformer(config: config, weights: weights, precision: options.precision, loras: parameters)
        let gradients = TransformerGradients(model: transformer, parameters: parameters, compute: pipeline.compute,
                                             checkpointing: s.checkpointing, text: text, pooled: pooled)
        var trainingSettings = TrainingSettings(maxTrainSteps: s.steps, schedule: .init(kind: s.lrScheduler, baseLR: s.lr, warmupSteps: s.lrWarmupSteps,
                                                                                       trainingSteps: s.steps),
                                                shiftFactor: pipeline.vaeConfig.shiftFactor ?? 0, scalingFactor: pipeline.vaeConfig.scalingFactor)
        (trainingSettings.batchSize, trainingSettings.accumulationSteps) = (s.batch, s.accumulation)
        var loop = TrainingLoop(settings: trainingSettings, sigmaSchedule: try TrainingSchedule(config: pipeline.schedulerConfig),
                                posteriors: posteriors, lora: lora, generator: generator)
        if let resume = s.resume, let resumed {
            try loop.restore(resumed, path: resume)
            report(.note("resumed from \(resume) at step \(loop.step)"))
        }
        func saveCheckpoint() throws {
            try loop.checkpoint(modelName: s.model, modelFingerprint: fingerprint).write(to: s.checkpoint, lora: loop.lora, optimizer: loop.optimizer)
            report(.checkpoint(path: s.checkpoint, step: loop.step))
        }

        report(.started(step: loop.step, steps: s.steps, images: data.examples.count))
        let (first, started) = (loop.step, Date())
        var lossSum = 0.0
        while !loop.isFinished {
            let result = try loop.runStep { try gradients($0, $1) }
            guard result.loss.isFinite else {
                throw TrainingError.invalid("the loss became \(result.loss) at step \(loop.step): lower the learning rate (the last checkpoint is kept)")
            }
            lossSum += Double(result.loss)
            let done = loop.step - first
            report(.step(StepProgress(step: loop.step, steps: s.steps, loss: result.loss, meanLoss: lossSum / Double(done),
                                      secondsPerStep: Date().timeIntervalSince(started) / Double(done))))
            let checkpointed = loop.step % s.checkpointEvery == 0 || loop.isFinished
            if checkpointed { try saveCheckpoint() }
            if let prompt = s.validationPrompt, loop.step % s.validationEvery == 0 || loop.isFinished {
                let (image, path) = try validationImage(prompt: prompt, step: loop.step, lora: loop.lora, pipeline: pipeline)
                report(.validation(step: loop.step, image: image, path: path))
            }
            if !loop.isFinished, shouldStop() {
                if !checkpointed { try saveCheckpoint() }
                return .stopped(step: loop.step, steps: s.steps, checkpoint: s.checkpoint)
            }
        }
        do { try loop.lora.write(to: s.output) } catch {
            throw OutputNotSaved(reason: "\(error)", checkpoint: s.checkpoint)
        }
        report(.note("LoRA \(s.output) (rank \(lora.rank), alpha \(ImageMetadata.number(lora.alpha)), \(lora.modules.count) modules); checkpoint \(s.checkpoint)"))
        return .finished(output: s.output, checkpoint: s.checkpoint, steps: loop.step)
    }

    /// Each image's VAE posterior, one image at a time (the encoder's activations at 512² are the largest tensors).
    static func posteriors(_ data: TrainingData, pipeline: StableDiffusion3Pipeline) throws -> [LatentPosterior] {
        let vae = try pipeline.vae()
        let side = data.resolution
        return try data.examples.flatMap { example in
            let (mean, logvar) = try vae.encode(Tensor(shape: [1, 3, side, side], data: example.pixels), compute: pipeline.compute)
            return LatentPosterior.split(mean: mean, logvar: logvar)
        }
    }

    /// The script's compute_text_embeddings for each caption: CLIP-L and CLIP-G loaded, run on every distinct caption
    /// and dropped, then T5 alone (zeros without it): [T, joint_attention_dim] and [pooled_projection_dim] per caption,
    /// and the encoders' warnings (e.g. a caption cut at the token limit).
    static func embeddings(_ captions: [String], pipeline: StableDiffusion3Pipeline,
                           maxSequenceLength: Int) throws -> (text: [Tensor], pooled: [Tensor], warnings: [String]) {
        let distinct = Array(Set(captions)).sorted()
        let (joint, precision, compute) = (pipeline.transformerConfig.jointAttentionDim, pipeline.options.precision, pipeline.compute)
        let halves = try {
            let clip = try PromptEncoder(source: pipeline.source, jointAttentionDim: joint, t5: .off, precision: precision, models: .clipOnly)
            return try distinct.map { try clip.encodeCLIP(prompts: [$0], negative: nil, guidance: false, maxSequenceLength: maxSequenceLength, compute: compute) }
        }()
        let t5 = try PromptEncoder(source: pipeline.source, jointAttentionDim: joint, t5: pipeline.hasT5 ? .on : .off, precision: precision, models: .t5Only)
        var byCaption: [String: (Tensor, Tensor)] = [:], warnings = Set<String>()
        for (caption, half) in zip(distinct, halves) {
            let conditioning = try t5.encodeT5(half, prompts: [caption], negative: nil, guidance: false, maxSequenceLength: maxSequenceLength, compute: compute)
            warnings.formUnion(conditioning.warnings)
            let e = conditioning.promptEmbeds, p = conditioning.pooled
            byCaption[caption] = (e.reshaped([e.dim(1), e.dim(2)]), p.reshaped([p.dim(1)]))
        }
        return (captions.map { byCaption[$0]!.0 }, captions.map { byCaption[$0]!.1 }, warnings.sorted())
    }

    /// The transformer's weight files, for the checkpoint's model fingerprint: a diffusers folder's shards by name, or
    /// the single file.
    static func transformerFiles(_ source: ModelSource) throws -> [String] {
        switch source.layout {
        case let .diffusers(folder):
            let dir = folder + "/transformer"
            let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !names.isEmpty else { throw TrainingError.data(path: dir, reason: "no .safetensors weights") }
            return names.map { dir + "/" + $0 }
        case let .singleFile(parts, _):
            guard let part = parts[.transformer] else { throw TrainingError.data(path: source.path, reason: "no transformer weights") }
            return [part.path]
        }
    }

    /// The script's log_validation: the prompt drawn at the training resolution with the LoRA so far at strength 1
    /// (run-time, on the unchanged base), the model's own steps and guidance, and a generator seeded with the run's
    /// seed; written to NAME-step-N.png beside the output (a numbered sibling if that name is taken).
    func validationImage(prompt: String, step: Int, lora: TrainableLora, pipeline training: StableDiffusion3Pipeline) throws -> (RGBImage, String) {
        let started = Date()
        // The LoRA so far, named NAME-step-N so the image's metadata says which; in a folder of this run, removed after.
        let folder = NSTemporaryDirectory() + "sd3-train-lora-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let stem = (settings.output as NSString).deletingPathExtension
        let temporary = folder + "/\((stem as NSString).lastPathComponent)-step-\(step).safetensors"
        try lora.write(to: temporary)
        var o = options
        (o.loras, o.loraMode) = ([LoraChoice(path: temporary, strength: 1)], .runTime)
        let pipeline = try StableDiffusion3Pipeline(source: training.source, options: o)
        let d = try ModelDefaults.resolved(pipeline.source)
        var p = GenerationParameters(prompt: prompt)
        (p.width, p.height, p.seed) = (settings.resolution, settings.resolution, settings.seed)
        (p.steps, p.guidanceScale, p.shift) = (d.steps ?? 28, d.guidanceScale ?? 7, d.shift)
        (p.maxSequenceLength, p.negativePrompt) = (d.maxSequenceLength ?? 256, d.negativePrompt ?? "")
        let image = try pipeline.generate(p)
        var metadata = ImageMetadata(parameters: p, model: settings.model, t5: pipeline.hasT5, shift: p.shift ?? pipeline.schedulerConfig.shift,
                                     precision: options.precision.rawValue, seconds: Date().timeIntervalSince(started))
        metadata.record(loras: pipeline.loras, mode: .runTime)
        let path = "\(stem)-step-\(step).png"
        let bytes = try PNGFile.encode(image, text: metadata.pngText + [("sd3-train-lora", "step \(step) of \(settings.steps), LoRA \(settings.output)")])
        guard let written = try PNGFile.writeNew(bytes, tries: 100_000, name: { $0 == 0 ? path : "\(stem)-step-\(step)-\($0).png" }) else {
            throw TrainingError.write(path: path, reason: "no free name (\(stem)-step-\(step)-1.png to -99999.png are all taken)")
        }
        return (image, written.path)
    }
}

extension LoraTrainingJob {
    /// What `start` streams: the run's events, then how it ended (a failure ends the stream with its error).
    public enum Update: Sendable {
        case event(Event)
        case ended(Outcome)
    }

    /// A run started on its own thread (not the cooperative pool, like InferenceEngine's), its updates streamed in
    /// order; `stop` asks it to stop between steps with a checkpoint, as Ctrl-C does `sd3 train-lora`.
    public struct Running: Sendable {
        public let updates: AsyncThrowingStream<Update, Error>
        let flag: StopFlag
        public func stop() { flag.set() }
    }

    /// `preparing` runs first on the job's thread (e.g. creating the output's folder), then `checkFiles`, then the run.
    public func start(preparing: @escaping @Sendable () throws -> Void = {}) -> Running {
        let (updates, continuation) = AsyncThrowingStream<Update, Error>.makeStream()
        let flag = StopFlag()
        let thread = Thread {
            do {
                try preparing()
                try Self.checkFiles(settings)
                let outcome = try run(shouldStop: { flag.isSet }) { continuation.yield(.event($0)) }
                continuation.yield(.ended(outcome))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        thread.name = "sd3-train-lora"
        thread.stackSize = 8 << 20
        thread.start()
        return Running(updates: updates, flag: flag)
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
