import Foundation
import SD3
import Tensors

/// One image's VAE posterior (`vae.encode(x).latent_dist`): the encoder is deterministic, so its mean and
/// log-variance are computed once and the script's per-step `.sample()` is drawn from them.
/// DiagonalGaussianDistribution: logvar clamped to [−30, 20], std = exp(0.5·logvar), sample = mean + std·ε.
public struct LatentPosterior: Sendable, Equatable {
    /// [C, h, w]
    public let shape: [Int]
    public let mean: [Float]  // [C, h, w]
    public let std: [Float]   // [C, h, w]

    public init(shape: [Int], mean: [Float], logvar: [Float]) {
        precondition(shape.count == 3 && mean.count == shape.reduce(1, *) && mean.count == logvar.count && !mean.isEmpty)
        (self.shape, self.mean) = (shape, mean)
        std = logvar.map { Foundation.exp(0.5 * min(max($0, -30), 20)) }
    }
}

extension LatentPosterior {
    /// One posterior per image from AutoencoderKL.encode's batch: mean and logvar [B, C, h, w].
    public static func split(mean: Tensor, logvar: Tensor) -> [LatentPosterior] {
        precondition(mean.shape == logvar.shape && mean.rank == 4)
        let shape = Array(mean.shape.dropFirst()), per = shape.reduce(1, *)
        return (0..<mean.dim(0)).map { b in
            LatentPosterior(shape: shape, mean: Array(mean.data[b * per..<(b + 1) * per]), logvar: Array(logvar.data[b * per..<(b + 1) * per]))
        }
    }
}

/// The numbers of the script's loop that are not the LoRA's: batch, accumulation, steps, σ density, loss,
/// clipping, lr schedule, and the VAE's shift and scale applied to each latent sample.
public struct TrainingSettings: Sendable, Equatable {
    public var batchSize = 1
    public var accumulationSteps = 1
    public var maxTrainSteps: Int
    public var density = TimestepDensity()
    /// The loss's weighting follows `density.scheme` (`--weighting_scheme` sets both); --precondition_outputs.
    public var preconditionOutputs = true
    public var loss: FlowMatchingLoss { FlowMatchingLoss(weighting: density.scheme.lossWeighting, preconditionOutputs: preconditionOutputs) }
    public var maxGradNorm = 1.0
    public var schedule: LearningRateSchedule
    public var shiftFactor: Float
    public var scalingFactor: Float

    public init(maxTrainSteps: Int, schedule: LearningRateSchedule, shiftFactor: Float, scalingFactor: Float) {
        (self.maxTrainSteps, self.schedule, self.shiftFactor, self.scalingFactor) = (maxTrainSteps, schedule, shiftFactor, scalingFactor)
    }
}

/// What the transformer side gets for one micro-batch: the noisy latents, their timesteps [B], the examples (indices
/// into the data) whose prompts apply, and `lossAndGradient`, which turns the transformer's output into the script's
/// loss and d loss / d output (the backward pass's start).
public struct MicroBatch: Sendable {
    public let examples: [Int]
    public let noisy: Tensor  // [B, C, h, w]
    public let timesteps: [Float]
    public let sigmas: [Float]
    let latents: Tensor, noise: Tensor, loss: FlowMatchingLoss  // x0 and ε [B, C, h, w]

    public func lossAndGradient(prediction: Tensor) -> (loss: Float, gradient: Tensor) {
        loss(prediction: prediction, latents: latents, noise: noise, sigmas: sigmas)
    }
}

/// train_dreambooth_lora_sd3.py's loop around the transformer (diffusers 0.42.1, accelerate 1.16, one process):
/// per epoch the DataLoader(shuffle=True) order, per micro-batch the posterior sample, noise, u, timestep, σ and
/// x_t, all on torch's global CPU generator in the script's order; gradients averaged over
/// `gradient_accumulation_steps` (and an optimizer step at each epoch's end, as accelerate syncs there), clipped,
/// AdamW, the lr schedule. The transformer's forward and backward are the caller's `gradients` function.
public struct TrainingLoop: Sendable {
    public typealias Gradients = (_ lora: TrainableLora, _ batch: MicroBatch) throws -> (loss: Float, gradients: [[Float]])

    public let settings: TrainingSettings
    public let sigmaSchedule: TrainingSchedule
    public let posteriors: [LatentPosterior]
    public private(set) var lora: TrainableLora
    public private(set) var optimizer: AdamW
    public private(set) var generator: TorchCPUGenerator
    public private(set) var epoch = 0
    /// Batches of the current epoch already used, and that epoch's order (empty until it starts).
    public private(set) var batchInEpoch = 0
    public private(set) var epochOrder: [Int] = []

    public init(settings: TrainingSettings, sigmaSchedule: TrainingSchedule, posteriors: [LatentPosterior], lora: TrainableLora,
                optimizer: AdamW? = nil, generator: TorchCPUGenerator) {
        precondition(settings.batchSize >= 1 && settings.accumulationSteps >= 1 && !posteriors.isEmpty)
        (self.settings, self.sigmaSchedule, self.posteriors, self.lora, self.generator) = (settings, sigmaSchedule, posteriors, lora, generator)
        self.optimizer = optimizer ?? AdamW(parameterCounts: lora.parameterCounts)
    }

    public var step: Int { optimizer.step }
    public var batchesPerEpoch: Int { (posteriors.count + settings.batchSize - 1) / settings.batchSize }
    /// The script's num_update_steps_per_epoch and num_train_epochs.
    public var updatesPerEpoch: Int { (batchesPerEpoch + settings.accumulationSteps - 1) / settings.accumulationSteps }
    public var epochs: Int { (settings.maxTrainSteps + updatesPerEpoch - 1) / updatesPerEpoch }
    public var isFinished: Bool { step >= settings.maxTrainSteps || epoch >= epochs }

    /// An epoch's order: the DataLoader iterator's `_base_seed` draw, then RandomSampler's seed draw (each
    /// `torch.empty((), int64).random_()`: random64() mod 2⁶³), then torch.randperm(n) on a generator seeded with it
    /// (randperm_cpu for small n: Fisher–Yates with random() mod (n − i)).
    public static func epochOrder(count n: Int, generator: inout TorchCPUGenerator) -> [Int] {
        func int64Draw() -> UInt64 {
            let high = UInt64(generator.random()), low = UInt64(generator.random())
            return ((high << 32) | low) % (1 << 63)
        }
        _ = int64Draw()
        var sampler = TorchCPUGenerator(seed: int64Draw())
        var order = Array(0..<n)
        for i in 0..<max(n - 1, 0) {
            let z = Int(UInt64(sampler.random()) % UInt64(n - i))
            order.swapAt(i, z + i)
        }
        return order
    }

    public struct StepReport: Sendable {
        /// The last micro-batch's loss (what the script logs), the lr used, the gradient norm before clipping.
        public var loss: Float { losses.last ?? 0 }
        /// Each micro-batch's loss, undivided by the accumulation steps.
        public let losses: [Float]
        public let lr: Double
        public let gradientNorm: Double
        public let microBatches: [MicroBatch]
    }

    /// One optimizer step: micro-batches until accelerate would sync, then clip, AdamW and the lr schedule.
    public mutating func runStep(_ gradients: Gradients) throws -> StepReport {
        precondition(!isFinished, "the run has finished")
        var accumulator = GradientAccumulator(steps: settings.accumulationSteps, parameterCounts: lora.parameterCounts)
        var micro: [MicroBatch] = [], losses: [Float] = []
        while true {
            if batchInEpoch == 0 { epochOrder = Self.epochOrder(count: posteriors.count, generator: &generator) }
            let start = batchInEpoch * settings.batchSize
            let examples = Array(epochOrder[start..<min(start + settings.batchSize, posteriors.count)])
            batchInEpoch += 1
            let endOfEpoch = batchInEpoch == batchesPerEpoch
            let batch = drawMicroBatch(examples)
            let (loss, g) = try gradients(lora, batch)
            _ = accumulator.add(g)
            (losses, micro) = (losses + [loss], micro + [batch])
            if endOfEpoch { (epoch, batchInEpoch, epochOrder) = (epoch + 1, 0, []) }
            if accumulator.count == settings.accumulationSteps || endOfEpoch { break }
        }
        var summed = accumulator.take()
        let norm = clipGradientNorm(&summed, maxNorm: settings.maxGradNorm)
        let lr = settings.schedule.lr(at: optimizer.step)
        var parameters = lora.parameters
        optimizer.update(parameters: &parameters, gradients: summed, lr: lr)
        lora.parameters = parameters
        return StepReport(losses: losses, lr: lr, gradientNorm: norm, microBatches: micro)
    }

    /// The script's lines from `latent_dist.sample()` to x_t, in its draw order: posterior ε, noise, u.
    mutating func drawMicroBatch(_ examples: [Int]) -> MicroBatch {
        let shape = [examples.count] + posteriors[0].shape, per = posteriors[0].mean.count
        let epsilon = generator.randn(shape)
        var x0 = [Float](repeating: 0, count: examples.count * per)
        for (b, e) in examples.enumerated() {
            let p = posteriors[e]
            for i in 0..<per {
                let sample = p.mean[i] + p.std[i] * epsilon[b * per + i]
                x0[b * per + i] = (sample - settings.shiftFactor) * settings.scalingFactor
            }
        }
        let latents = Tensor(shape: shape, data: x0), noise = Tensor(shape: shape, data: generator.randn(shape))
        let u = settings.density.sample(batchSize: examples.count, generator: &generator)
        let draws = u.map { sigmaSchedule.draw(u: $0) }
        let sigmas = draws.map(\.sigma)
        return MicroBatch(examples: examples, noisy: FlowMatchingLoss.noisy(latents: latents, noise: noise, sigmas: sigmas),
                          timesteps: draws.map(\.timestep), sigmas: sigmas, latents: latents, noise: noise, loss: settings.loss)
    }

    /// The checkpoint of the run as it stands (between optimizer steps, where accelerate's accumulation is empty).
    public func checkpoint(modelName: String, modelFingerprint: String) -> TrainingCheckpoint {
        TrainingCheckpoint(modelName: modelName, modelFingerprint: modelFingerprint, rank: lora.rank, alpha: lora.alpha, targets: lora.targets,
                           modules: lora.modules.map { .init(name: $0.name, inFeatures: $0.inFeatures, outFeatures: $0.outFeatures) },
                           step: step, schedule: settings.schedule, density: settings.density,
                           preconditionOutputs: settings.preconditionOutputs, maxGradNorm: settings.maxGradNorm,
                           batchSize: settings.batchSize, accumulationSteps: settings.accumulationSteps, adamBeta1: optimizer.beta1, adamBeta2: optimizer.beta2,
                           adamWeightDecay: optimizer.weightDecay, adamEpsilon: optimizer.epsilon, generator: generator.snapshot,
                           epoch: epoch, batchInEpoch: batchInEpoch, epochOrder: epochOrder)
    }

    /// Restores a checkpoint's position (its LoRA, optimizer, generator and data order); `path` names it in errors.
    public mutating func restore(_ loaded: TrainingCheckpoint.Loaded, path: String) throws {
        guard loaded.lora.parameterCounts == lora.parameterCounts, loaded.lora.modules.map(\.name) == lora.modules.map(\.name) else {
            throw TrainingError.checkpoint(path: path, reason: "its LoRA modules differ from this run's (other --lora-layers?)")
        }
        let c = loaded.checkpoint
        if let difference = c.difference(from: settings) { throw TrainingError.checkpoint(path: path, reason: difference) }
        guard c.batchInEpoch < batchesPerEpoch, c.epochOrder.isEmpty ? c.batchInEpoch == 0 : c.epochOrder.sorted() == Array(0..<posteriors.count) else {
            throw TrainingError.checkpoint(path: path, reason: "its data position does not fit this data folder (\(posteriors.count) images)")
        }
        (lora, optimizer, generator) = (loaded.lora, loaded.optimizer, loaded.generator)
        (epoch, batchInEpoch, epochOrder) = (c.epoch, c.batchInEpoch, c.epochOrder)
    }
}
