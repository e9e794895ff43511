import Foundation
import Tensors

/// diffusers `compute_loss_weighting_for_sd3` (training_utils.py): the per-sample weight of the squared error.
public enum LossWeighting: String, Sendable, CaseIterable {
    /// "sigma_sqrt": σ⁻².
    case sigmaSqrt = "sigma_sqrt"
    /// "cosmap": 2 / (π·(1 − 2σ + 2σ²)).
    case cosmap
    /// Any other scheme (the script's default "none", "logit_normal", "mode": they shape the σ sampling instead): 1.
    case none

    public func weight(sigma: Float) -> Float {
        switch self {
        case .sigmaSqrt: return 1 / (sigma * sigma)
        // π rounded to nearest as torch casts math.pi (Swift's Float.pi is rounded toward zero, an ulp below).
        case .cosmap: return 2 / (Float(Double.pi) * (1 - 2 * sigma + 2 * sigma * sigma))
        case .none: return 1
        }
    }
}

/// The loss of diffusers' train_dreambooth_lora_sd3.py (0.42.1) for one batch:
///     x_t = (1 − σ)·x0 + σ·ε;  pred = transformer(x_t, …)
///     precondition_outputs (the script's default 1): pred ← pred·(−σ) + x_t and target = x0, else target = ε − x0
///     loss = mean over the batch of mean over elements of weighting(σ)·(pred − target)²
public struct FlowMatchingLoss: Sendable {
    public var weighting: LossWeighting
    public var preconditionOutputs: Bool

    public init(weighting: LossWeighting = .none, preconditionOutputs: Bool = true) {
        (self.weighting, self.preconditionOutputs) = (weighting, preconditionOutputs)
    }

    /// x_t = (1 − σ_b)·x0 + σ_b·ε, latents and noise [B, ...], sigmas [B].
    public static func noisy(latents: Tensor, noise: Tensor, sigmas: [Float]) -> Tensor {
        precondition(latents.shape == noise.shape && sigmas.count == latents.dim(0), "noisy: latents \(latents.shape), noise \(noise.shape), \(sigmas.count) sigmas")
        let per = latents.count / max(1, sigmas.count)
        var out = latents
        for i in 0..<out.count {
            let s = sigmas[i / per]
            out.data[i] = (1 - s) * latents.data[i] + s * noise.data[i]
        }
        return out
    }

    /// The loss and dL/d(prediction) for the transformer's prediction [B, ...] at x_t = noisy(latents, noise, sigmas).
    public func callAsFunction(prediction: Tensor, latents: Tensor, noise: Tensor, sigmas: [Float]) -> (loss: Float, gradient: Tensor) {
        precondition(prediction.shape == latents.shape && noise.shape == latents.shape && sigmas.count == latents.dim(0),
                     "loss: prediction \(prediction.shape), latents \(latents.shape), noise \(noise.shape), \(sigmas.count) sigmas")
        let batch = sigmas.count, per = latents.count / max(1, batch)
        var gradient = Tensor(zeros: prediction.shape)
        var total = 0.0
        for b in 0..<batch {
            let s = sigmas[b], weight = weighting.weight(sigma: s)
            var sum = 0.0
            for j in b * per..<(b + 1) * per {
                let (x0, e, pred) = (latents.data[j], noise.data[j], prediction.data[j])
                let error = preconditionOutputs ? pred * -s + ((1 - s) * x0 + s * e) - x0 : pred - (e - x0)
                sum += Double(weight) * Double(error) * Double(error)
                // d/dpred of weight·error² / (B·per); preconditioning multiplies by d(error)/d(pred) = −σ.
                let g = 2 * weight * error / Float(batch * per)
                gradient.data[j] = preconditionOutputs ? -s * g : g
            }
            total += sum / Double(per)
        }
        return (Float(total / Double(batch)), gradient)
    }
}
