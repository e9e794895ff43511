import ArgumentParser
import Foundation
import ImageIO
import SD3
import Tensors
import Training

/// One `sd3 train-lora` run: the data and the frozen encoders' outputs computed once (each encoder freed after its
/// use, so memory stays near inference's), then TrainingLoop on TrainableSD3Transformer with checkpoints, validation
/// images, a progress line, and Ctrl-C stopping between steps with a checkpoint.
struct TrainLoraJob {
    let command: TrainLoraCommand
    let model: String
    let options: LoadOptions
    let seed: UInt64

    func run() throws {
        let c = command
        let pipeline = try StableDiffusion3Pipeline(path: model, options: options)
        let (multiple, config) = (pipeline.sizeMultiple, pipeline.transformerConfig)
        let maxSide = config.posEmbedMaxSize * multiple
        guard c.resolution % multiple == 0, c.resolution <= maxSide else {
            throw CommandError("--resolution \(c.resolution): this model trains at multiples of \(multiple) up to \(maxSide) pixels")
        }
        guard try pipeline.source.weights(.vae).contains("encoder.conv_in.weight") else {
            throw CommandError("\(model): its VAE has no encoder (encoder.* weights), which training needs to encode the images")
        }
        // The checkpoint's model, rank, alpha and format are checked before any work; its settings and data position
        // once the data is read (TrainingLoop.restore).
        let fingerprint = try ModelFingerprint.of(files: try Self.transformerFiles(pipeline.source))
        let resumed = try c.resume.map {
            try TrainingCheckpoint.read($0, modelName: model, modelFingerprint: fingerprint, rank: c.rank, alpha: c.alpha ?? Double(c.rank))
        }
        let data = try TrainingData(folder: c.data, resolution: c.resolution, instancePrompt: c.instancePrompt)
        if !data.ignored.isEmpty { log("note: skipped \(data.ignored.count) other file(s) in \(c.data): \(data.ignored.prefix(3).joined(separator: ", "))") }
        log("\(data.examples.count) images at \(c.resolution)², seed \(seed)")
        let posteriors = try Self.posteriors(data, pipeline: pipeline)
        pipeline.release(.vae)
        let (text, pooled) = try Self.embeddings(data.examples.map(\.caption), pipeline: pipeline, maxSequenceLength: c.maxSequenceLength)

        let weights = try pipeline.source.weights(.transformer)
        var generator = TorchCPUGenerator(seed: seed)
        let lora = try TrainableLora(rank: c.rank, alpha: c.alpha ?? Double(c.rank),
                                     targets: c.loraLayers.map(TrainLoraCommand.layers) ?? TrainableLora.defaultTargets,
                                     linears: TransformerLinears.list(weights, layers: config.numLayers), generator: &generator)
        let parameters = lora.makeParameters()
        let transformer = try TrainableSD3Transformer(config: config, weights: weights, precision: options.precision, loras: parameters)
        let gradients = TransformerGradients(model: transformer, parameters: parameters, compute: pipeline.compute,
                                             checkpointing: c.checkpointing, text: text, pooled: pooled)
        var settings = TrainingSettings(maxTrainSteps: c.steps, schedule: .init(kind: LearningRateSchedule.Kind(rawValue: c.lrScheduler) ?? .constant, baseLR: c.lr,
                                                                                  warmupSteps: c.lrWarmupSteps, trainingSteps: c.steps),
                                        shiftFactor: pipeline.vaeConfig.shiftFactor ?? 0, scalingFactor: pipeline.vaeConfig.scalingFactor)
        (settings.batchSize, settings.accumulationSteps) = (c.batch, c.accumulation)
        var loop = TrainingLoop(settings: settings, sigmaSchedule: try TrainingSchedule(config: pipeline.schedulerConfig),
                                posteriors: posteriors, lora: lora, generator: generator)
        if let resume = c.resume, let resumed {
            try loop.restore(resumed, path: resume)
            log("resumed from \(resume) at step \(loop.step)")
        }
        let checkpointPath = c.checkpointPath
        func saveCheckpoint() throws {
            try loop.checkpoint(modelName: model, modelFingerprint: fingerprint).write(to: checkpointPath, lora: loop.lora, optimizer: loop.optimizer)
        }

        Interrupt.install()
        let progress = ProgressLine(from: loop.step)
        var (lossSum, lossCount) = (0.0, 0)
        while !loop.isFinished {
            let report = try loop.runStep { try gradients($0, $1) }
            guard report.loss.isFinite else {
                progress.finish()
                throw CommandError("the loss became \(report.loss) at step \(loop.step): lower --lr (the last checkpoint is kept)")
            }
            (lossSum, lossCount) = (lossSum + Double(report.loss), lossCount + 1)
            progress.update(step: loop.step, of: c.steps, detail: String(format: "loss %.4f (mean %.4f)", report.loss, lossSum / Double(lossCount)))
            if loop.step % c.checkpointEvery == 0 || loop.isFinished { try saveCheckpoint() }
            if let prompt = c.validationPrompt, loop.step % c.validationEvery == 0 || loop.isFinished {
                try validationImage(prompt: prompt, step: loop.step, lora: loop.lora, pipeline: pipeline)
            }
            if Interrupt.requested && !loop.isFinished {
                progress.finish()
                if loop.step % c.checkpointEvery != 0 { try saveCheckpoint() }
                log("stopped after step \(loop.step) of \(c.steps); checkpoint \(checkpointPath) (continue with --resume \(checkpointPath))")
                throw ExitCode(130)
            }
        }
        progress.finish()
        do { try loop.lora.write(to: c.output) } catch {
            throw CommandError("\(error); the checkpoint \(checkpointPath) holds the trained LoRA: make room and run again with --resume \(checkpointPath)")
        }
        print(c.output)
        log("LoRA \(c.output) (rank \(lora.rank), alpha \(ImageMetadata.number(lora.alpha)), \(lora.modules.count) modules); checkpoint \(checkpointPath)")
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
    /// and dropped, then T5 alone (zeros without it): [T, joint_attention_dim] and [pooled_projection_dim] per caption.
    static func embeddings(_ captions: [String], pipeline: StableDiffusion3Pipeline, maxSequenceLength: Int) throws -> (text: [Tensor], pooled: [Tensor]) {
        let distinct = Array(Set(captions)).sorted()
        let (joint, precision, compute) = (pipeline.transformerConfig.jointAttentionDim, pipeline.options.precision, pipeline.compute)
        let halves = try {
            let clip = try PromptEncoder(source: pipeline.source, jointAttentionDim: joint, useT5: false, precision: precision, models: .clipOnly)
            return try distinct.map { try clip.encodeCLIP(prompts: [$0], negative: nil, guidance: false, maxSequenceLength: maxSequenceLength, compute: compute) }
        }()
        let t5 = try PromptEncoder(source: pipeline.source, jointAttentionDim: joint, useT5: pipeline.hasT5, precision: precision, models: .t5Only)
        var byCaption: [String: (Tensor, Tensor)] = [:], warnings = Set<String>()
        for (caption, half) in zip(distinct, halves) {
            let conditioning = try t5.encodeT5(half, prompts: [caption], negative: nil, guidance: false, maxSequenceLength: maxSequenceLength, compute: compute)
            warnings.formUnion(conditioning.warnings)
            let e = conditioning.promptEmbeds, p = conditioning.pooled
            byCaption[caption] = (e.reshaped([e.dim(1), e.dim(2)]), p.reshaped([p.dim(1)]))
        }
        for warning in warnings.sorted() { log("note: \(warning)") }
        return (captions.map { byCaption[$0]!.0 }, captions.map { byCaption[$0]!.1 })
    }

    /// The transformer's weight files, for the checkpoint's model fingerprint: a diffusers folder's shards by name, or
    /// the single file.
    static func transformerFiles(_ source: ModelSource) throws -> [String] {
        switch source.layout {
        case let .diffusers(folder):
            let dir = folder + "/transformer"
            let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !names.isEmpty else { throw CommandError("\(dir): no .safetensors weights") }
            return names.map { dir + "/" + $0 }
        case let .singleFile(parts, _):
            guard let part = parts[.transformer] else { throw CommandError("\(source.path): no transformer weights") }
            return [part.path]
        }
    }

    /// The script's log_validation: the prompt drawn at the training resolution with the LoRA so far at strength 1
    /// (run-time, on the unchanged base), the model's own steps and guidance, and a generator seeded with --seed.
    func validationImage(prompt: String, step: Int, lora: TrainableLora, pipeline training: StableDiffusion3Pipeline) throws {
        let started = Date()
        // The LoRA so far, named NAME-step-N so the image's metadata says which; in a folder of this process, removed after.
        let folder = NSTemporaryDirectory() + "sd3-train-lora-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let stem = (command.output as NSString).deletingPathExtension
        let temporary = folder + "/\((stem as NSString).lastPathComponent)-step-\(step).safetensors"
        try lora.write(to: temporary)
        var o = options
        (o.loras, o.loraMode) = ([LoraChoice(path: temporary, strength: 1)], .runTime)
        let pipeline = try StableDiffusion3Pipeline(source: training.source, options: o)
        let d = try ModelDefaults.resolved(pipeline.source)
        var p = GenerationParameters(prompt: prompt)
        (p.width, p.height, p.seed) = (command.resolution, command.resolution, seed)
        (p.steps, p.guidanceScale, p.shift) = (d.steps ?? 28, d.guidanceScale ?? 7, d.shift)
        (p.maxSequenceLength, p.negativePrompt) = (d.maxSequenceLength ?? 256, d.negativePrompt ?? "")
        let image = try pipeline.generate(p)
        var metadata = ImageMetadata(parameters: p, model: model, t5: pipeline.hasT5, shift: p.shift ?? pipeline.schedulerConfig.shift,
                                     precision: options.precision.rawValue, seconds: Date().timeIntervalSince(started))
        metadata.record(loras: pipeline.loras, mode: .runTime)
        let written = try GenerateCommand.writeNew(image, metadata: metadata, at: "\(stem)-step-\(step).png",
                                                   extraText: [("sd3-train-lora", "step \(step) of \(command.steps), LoRA \(command.output)")])
        log("validation image \(written)")
    }
}
