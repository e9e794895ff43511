import Foundation
import SD3

/// `--weighting_scheme` of train_dreambooth_lora_sd3.py (diffusers 0.42.1; default logit_normal). It picks both the
/// timestep density (`compute_density_for_timestep_sampling`) and the loss weight (`compute_loss_weighting_for_sd3`):
/// logit_normal and mode sample non-uniformly with weight 1; sigma_sqrt and cosmap sample uniformly and weight the
/// loss; none (training_utils' else branches; not one of the script's choices) samples uniformly with weight 1.
public enum WeightingScheme: String, CaseIterable, Sendable, Codable {
    case logitNormal = "logit_normal", mode, sigmaSqrt = "sigma_sqrt", cosmap, none
}

/// `compute_density_for_timestep_sampling` with the script's defaults (`--logit_mean 0 --logit_std 1 --mode_scale 1.29`).
/// The script passes no generator, so u comes from torch's global CPU generator (seeded by `set_seed(--seed)`), after
/// the posterior sample and the noise of the same step.
public struct TimestepDensity: Sendable, Equatable, Codable {
    public var scheme: WeightingScheme
    public var logitMean: Double = 0
    public var logitStd: Double = 1
    public var modeScale: Double = 1.29

    public init(scheme: WeightingScheme = .logitNormal, logitMean: Double = 0, logitStd: Double = 1, modeScale: Double = 1.29) {
        (self.scheme, self.logitMean, self.logitStd, self.modeScale) = (scheme, logitMean, logitStd, modeScale)
    }

    /// u for a batch, float32 like torch: [B].
    public func sample(batchSize: Int, generator: inout TorchCPUGenerator) -> [Float] {
        switch scheme {
        case .logitNormal:
            // torch.normal(mean, std, (B,)) then sigmoid, which below two vector widths is the scalar 1 / (1 + exp(−x))
            // (the fixture's batches of 16, 17 and 20 agree bit for bit too).
            return generator.normal(mean: logitMean, std: logitStd, count: batchSize).map { 1 / (1 + Foundation.exp(-$0)) }
        case .mode:
            // u = 1 − u − scale·(cos(π·u/2)² − 1 + u), each op in float32 with the Python scalars cast to float.
            // torch.cos runs MKL's vsCos (closed source, not reproducible here); glibc's correctly rounded cosf
            // differs from it by at most 1 ulp (on 5% of inputs), which cos² − 1 + u can widen to a few ulps of u.
            let scale = Float(modeScale), pi = Float(Double.pi)
            return generator.rand(batchSize).map { u in
                let c = Foundation.cos(pi * u / 2)
                return (1 - u) - scale * (c * c - 1 + u)
            }
        case .sigmaSqrt, .cosmap, .none:
            return generator.rand(batchSize)
        }
    }
}

/// The training schedule the script reads (`noise_scheduler_copy.timesteps` / `.sigmas`): the scheduler's constructor
/// values, never `set_timesteps`. FlowMatchEulerDiscreteScheduler.__init__: t = linspace(1, N, N)[::-1] in float32,
/// σ = t / N, shifted σ' = shift·σ / (1 + (shift − 1)·σ) unless dynamic shifting, timesteps = σ'·N; all float32.
public struct TrainingSchedule: Sendable, Equatable {
    public let numTrainTimesteps: Int
    /// [N], descending: timesteps[i] = sigmas[i]·N.
    public let timesteps: [Float]
    /// [N], descending from 1 to shift / (N + shift − 1) (no terminal 0, unlike the inference schedule).
    public let sigmas: [Float]

    public init(config: FlowMatchEulerDiscreteScheduler.Config) throws {
        _ = try FlowMatchEulerDiscreteScheduler(config: config)  // the same option checks as inference
        let n = config.numTrainTimesteps
        let nf = Float(n)
        let shift = Float(config.shift), shiftMinusOne = Float(config.shift - 1)
        var sigmas = [Float](), timesteps = [Float]()
        sigmas.reserveCapacity(n)
        timesteps.reserveCapacity(n)
        for t in stride(from: n, through: 1, by: -1) {
            var s = Float(t) / nf
            if !config.useDynamicShifting { s = (shift * s) / (1 + shiftMinusOne * s) }
            sigmas.append(s)
            timesteps.append(s * nf)
        }
        (numTrainTimesteps, self.sigmas, self.timesteps) = (n, sigmas, timesteps)
    }

    /// `(u * num_train_timesteps).long()`: truncation toward zero of the float32 product. torch would raise an
    /// IndexError for u ≥ 1 (sigmoid rounding to 1 above x ≈ 16.6, or mode's u = 0, each about 2⁻²⁴ likely);
    /// we clamp to the schedule instead of ending a training run.
    public func index(u: Float) -> Int {
        let scaled = u * Float(numTrainTimesteps)
        guard scaled.isFinite else { return scaled > 0 ? numTrainTimesteps - 1 : 0 }
        return min(max(Int(scaled.rounded(.towardZero)), 0), numTrainTimesteps - 1)
    }

    /// The script's u → (timestep, σ): `timesteps[indices]`, then get_sigmas' lookup of σ by equal timestep, which for
    /// these distinct timesteps is sigmas[index].
    public func draw(u: Float) -> (index: Int, timestep: Float, sigma: Float) {
        let i = index(u: u)
        return (i, timesteps[i], sigmas[i])
    }
}

extension WeightingScheme {
    /// The scheme's `compute_loss_weighting_for_sd3`: sigma_sqrt and cosmap weight the loss, the others weight 1.
    public var lossWeighting: LossWeighting {
        switch self {
        case .sigmaSqrt: return .sigmaSqrt
        case .cosmap: return .cosmap
        case .logitNormal, .mode, .none: return .none
        }
    }
}
