import Foundation

/// The script's flow-matching step around the transformer call, float32 (its default `--mixed_precision` is none, so
/// latents, noise and σ are fp32): x_t = (1 − σ)·x0 + σ·ε; with `--precondition_outputs 1` (the default) the
/// prediction becomes pred·(−σ) + x_t and the target x0, otherwise the target is ε − x0. The loss is
/// mean_b( mean_e( w_b·(pred_b − target_b)² ) ), as `torch.mean(....reshape(B, -1), 1).mean()`.
public struct FlowMatchingLoss: Sendable, Equatable {
    public var weighting: WeightingScheme
    public var preconditionOutputs: Bool

    public init(weighting: WeightingScheme = .logitNormal, preconditionOutputs: Bool = true) {
        (self.weighting, self.preconditionOutputs) = (weighting, preconditionOutputs)
    }

    /// x_t for a batch: x0 and noise [B, C, H, W] flattened, sigmas [B].
    public static func noisyInput(x0: [Float], noise: [Float], sigmas: [Float]) -> [Float] {
        precondition(x0.count == noise.count && !sigmas.isEmpty && x0.count % sigmas.count == 0)
        let per = x0.count / sigmas.count
        var out = [Float](repeating: 0, count: x0.count)
        for b in 0..<sigmas.count {
            let s = sigmas[b], keep = 1 - s
            for i in b * per..<(b + 1) * per { out[i] = keep * x0[i] + s * noise[i] }
        }
        return out
    }

    /// The loss and its gradient with respect to the transformer's raw output (what the backward pass starts from).
    /// `prediction`, `noisy`, `x0`, `noise`: [B, C, H, W] flattened; `sigmas`: [B]. The sums run in double, so the loss
    /// agrees with torch's float32 pairwise mean to about 1e-7 relative.
    public func evaluate(prediction: [Float], noisy: [Float], x0: [Float], noise: [Float], sigmas: [Float]) -> (loss: Float, gradient: [Float]) {
        let count = prediction.count, batch = sigmas.count
        precondition(batch > 0 && count % batch == 0 && [noisy.count, x0.count, noise.count].allSatisfy { $0 == count })
        let per = count / batch
        var gradient = [Float](repeating: 0, count: count)
        var total = 0.0
        for b in 0..<batch {
            let s = sigmas[b], w = lossWeighting(weighting, sigma: s)
            // d/d pred of w·(p − t)² / (B·E), times dp/dpred = −σ when preconditioned.
            let scale = 2 * Double(w) / Double(batch * per) * (preconditionOutputs ? -Double(s) : 1)
            var sum = 0.0
            for i in b * per..<(b + 1) * per {
                let p: Float, t: Float
                if preconditionOutputs {
                    (p, t) = (prediction[i] * -s + noisy[i], x0[i])
                } else {
                    (p, t) = (prediction[i], noise[i] - x0[i])
                }
                let d = p - t
                sum += Double(w * (d * d))
                gradient[i] = Float(scale * Double(d))
            }
            total += sum / Double(per)
        }
        return (Float(total / Double(batch)), gradient)
    }
}
