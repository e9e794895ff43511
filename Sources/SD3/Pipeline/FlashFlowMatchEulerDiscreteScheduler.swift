import Foundation

/// `FlashFlowMatchEulerDiscreteScheduler` of jasperai/flash-sd3, from the initml/diffusers fork
/// (src/diffusers/schedulers/scheduling_flash_flow_match_euler_discrete.py, commit 04bb8ffc), reproduced operation
/// by operation. Its schedule is FlowMatchEulerDiscreteScheduler's without dynamic shifting or a terminal stretch
/// (only `num_train_timesteps` and `shift` are read from the config): float32 training sigmas, the linspace in
/// float64 shifted a second time, then float32. Each step predicts x0 = x − σ·v and, except at the last step,
/// re-noises it to σ_next with a fresh `torch.randn` of the latent shape; the last step returns x0.
///
/// Noise order: the fork's pipeline calls `scheduler.step(noise_pred, t, latents)` without a generator, so its
/// re-noise draws from torch's default CPU generator. We draw it from the run's generator right after the starting
/// latents, which is exactly diffusers' sequence for `torch.manual_seed(seed)` with `generator=None`.
public struct FlashFlowMatchEulerDiscreteScheduler: Sendable {
    public let numTrainTimesteps: Int
    public let shift: Double
    public let sigmaMax: Double
    public let sigmaMin: Double
    /// After `setTimesteps`: N timesteps and N + 1 sigmas (the last 0).
    public private(set) var timesteps: [Float] = []
    public private(set) var sigmas: [Float] = []

    public init(numTrainTimesteps: Int = 1000, shift: Double) throws {
        guard numTrainTimesteps > 1, shift > 0, shift.isFinite else {
            throw SchedulerError.unsupported("flash scheduler with num_train_timesteps \(numTrainTimesteps) and shift \(shift)")
        }
        (self.numTrainTimesteps, self.shift) = (numTrainTimesteps, shift)
        // Constructor: torch float32 ops on linspace(1, N, N)[::-1] / N.
        let n = Float(numTrainTimesteps), s = Float(shift)
        func trainSigma(_ t: Float) -> Float {
            let x = t / n
            return s * x / (1 + (s - 1) * x)
        }
        sigmaMax = Double(trainSigma(n))
        sigmaMin = Double(trainSigma(1))
    }

    /// `set_timesteps`: numpy linspace (float64) from sigma_max·N to sigma_min·N, / N, shifted, then float32.
    public mutating func setTimesteps(_ steps: Int) throws {
        guard steps > 0 else { throw SchedulerError.invalidSteps(steps) }
        let n = Double(numTrainTimesteps)
        let start = sigmaMax * n, stop = sigmaMin * n
        let step = steps > 1 ? (stop - start) / Double(steps - 1) : 0
        let linear = (0..<steps).map { i in (i == steps - 1 && steps > 1 ? stop : Double(i) * step + start) / n }
        let shifted = linear.map { shift * $0 / (1 + (shift - 1) * $0) }
        sigmas = shifted.map { Float($0) } + [0]
        timesteps = sigmas.dropLast().map { $0 * Float(numTrainTimesteps) }
    }

    /// `step`: x0 = sample − v·σ; before the last step x = σ_next·noise + (1 − σ_next)·x0 with `noise` drawn from
    /// `generator` in the latent shape [B, C, h, w]; each op rounded to float32 like torch.
    public func step<G: NormalSource>(_ velocity: [Float], sample: [Float], index: Int, shape: [Int], generator: inout G) -> [Float] {
        precondition(index >= 0 && index + 1 < sigmas.count, "flash scheduler step \(index) outside \(sigmas.count - 1) steps")
        let sigma = sigmas[index]
        let x0 = zip(sample, velocity).map { x, v in
            let scaled = v * sigma
            return x - scaled
        }
        guard index < timesteps.count - 1 else { return x0 }
        let next = sigmas[index + 1], keep = 1 - next
        let noise = generator.randn(shape)
        return zip(x0, noise).map { x, e in
            let a = next * e
            let b = keep * x
            return a + b
        }
    }

    /// `scale_noise` (img2img): x = σ·noise + (1 − σ)·x0 at `index`.
    public func scaleNoise(_ x0: [Float], noise: [Float], index: Int) -> [Float] {
        FlowMatchEulerDiscreteScheduler.scaleNoise(x0, noise: noise, sigma: sigmas[index])
    }
}
