import Foundation

/// torch.optim.AdamW (torch 2.15, `_single_tensor_adam` with decoupled weight decay: the CPU default) on fp32
/// parameters, with the script's defaults β = (0.9, 0.999), weight decay 1e-4, ε 1e-8. Per step t (from 1):
///   θ ← θ·(1 − lr·λ);  m ← lerp(m, g, 1 − β1);  v ← v·β2 + (1 − β2)·g²;
///   θ ← θ − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
/// The scalars are Python doubles, rounded to float where the tensor op takes them, as torch does.
public struct AdamW: Sendable, Equatable, Codable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var weightDecay: Double = 1e-4
    public var epsilon: Double = 1e-8
    /// Optimizer steps taken (torch's `state["step"]`).
    public private(set) var step = 0
    /// First and second moments, one array per parameter, each [numel] (torch's exp_avg, exp_avg_sq).
    public private(set) var exp_avg: [[Float]]
    public private(set) var exp_avg_sq: [[Float]]

    public init(parameterCounts: [Int], beta1: Double = 0.9, beta2: Double = 0.999, weightDecay: Double = 1e-4, epsilon: Double = 1e-8) {
        (self.beta1, self.beta2, self.weightDecay, self.epsilon) = (beta1, beta2, weightDecay, epsilon)
        exp_avg = parameterCounts.map { [Float](repeating: 0, count: $0) }
        exp_avg_sq = exp_avg
    }

    /// A restored state (a training checkpoint's).
    public init(step: Int, exp_avg: [[Float]], exp_avg_sq: [[Float]], beta1: Double, beta2: Double, weightDecay: Double, epsilon: Double) {
        precondition(exp_avg.map(\.count) == exp_avg_sq.map(\.count))
        (self.step, self.exp_avg, self.exp_avg_sq) = (step, exp_avg, exp_avg_sq)
        (self.beta1, self.beta2, self.weightDecay, self.epsilon) = (beta1, beta2, weightDecay, epsilon)
    }

    /// One step at learning rate `lr` (the scheduler's current value) on every parameter.
    public mutating func update(parameters: inout [[Float]], gradients: [[Float]], lr: Double) {
        precondition(parameters.map(\.count) == exp_avg.map(\.count) && gradients.map(\.count) == exp_avg.map(\.count))
        step += 1
        let t = Double(step)
        let decay = Float(1 - lr * weightDecay)
        let lerpWeight = Float(1 - beta1), b2 = Float(beta2), oneMinusB2 = Float(1 - beta2)
        let stepSize = lr / (1 - Foundation.pow(beta1, t))
        let correction2Sqrt = Float((1 - Foundation.pow(beta2, t)).squareRoot())
        let negStepSize = Float(-stepSize), eps = Float(epsilon)
        for p in parameters.indices {
            parameters[p].withUnsafeMutableBufferPointer { theta in
                exp_avg[p].withUnsafeMutableBufferPointer { m in
                    exp_avg_sq[p].withUnsafeMutableBufferPointer { v in
                        gradients[p].withUnsafeBufferPointer { g in
                            for i in 0..<theta.count {
                                if weightDecay != 0 { theta[i] = theta[i] * decay }
                                // lerp with weight < 0.5: m + w·(g − m), which torch's vector kernel fuses (fmadd).
                                m[i] = m[i].addingProduct(lerpWeight, g[i] - m[i])
                                // addcmul: v·β2 + value·g·g.
                                v[i] = v[i] * b2 + oneMinusB2 * (g[i] * g[i])
                                let denom = v[i].squareRoot() / correction2Sqrt + eps
                                // addcdiv: θ + value·(m / denom).
                                theta[i] = theta[i] + negStepSize * (m[i] / denom)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// torch.nn.utils.clip_grad_norm_(params, max_norm) as accelerate calls it (norm_type 2, foreach): the total norm
/// is the 2-norm of the per-parameter 2-norms; every gradient is scaled by min(1, max_norm / (total + 1e-6)).
/// Returns the total norm before clipping (what torch returns).
@discardableResult
public func clipGradientNorm(_ gradients: inout [[Float]], maxNorm: Double) -> Double {
    let norms = gradients.map { g in Float(g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()) }
    let total = Float(norms.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
    // clip_coef = max_norm / (total + 1e-6), clamped to 1, float32; torch multiplies even when it is 1.
    let coefficient = min(Float(maxNorm) / (total + 1e-6), 1)
    for p in gradients.indices {
        gradients[p].withUnsafeMutableBufferPointer { g in
            for i in 0..<g.count { g[i] = g[i] * coefficient }
        }
    }
    return Double(total)
}

/// Gradient accumulation as accelerate does it for the script: each micro-batch's loss is divided by the number of
/// accumulation steps before backward and the gradients add up, so the optimizer sees their mean; the optimizer,
/// the clipping and the lr schedule step only on the last micro-batch (`sync_gradients`).
public struct GradientAccumulator: Sendable {
    public let steps: Int
    public private(set) var count = 0
    public private(set) var sum: [[Float]]

    public init(steps: Int, parameterCounts: [Int]) {
        precondition(steps >= 1)
        self.steps = steps
        sum = parameterCounts.map { [Float](repeating: 0, count: $0) }
    }

    /// Adds one micro-batch's gradients (of the undivided loss); true when an optimizer step is due.
    public mutating func add(_ gradients: [[Float]]) -> Bool {
        precondition(gradients.map(\.count) == sum.map(\.count))
        // torch's backward of loss / k divides each gradient by k (DivBackward), then adds it to .grad.
        let k = Float(steps)
        for p in sum.indices {
            for i in sum[p].indices { sum[p][i] += gradients[p][i] / k }
        }
        count += 1
        return count == steps
    }

    /// The accumulated gradients, leaving the accumulator empty (optimizer.zero_grad()).
    public mutating func take() -> [[Float]] {
        defer {
            count = 0
            for p in sum.indices { sum[p] = [Float](repeating: 0, count: sum[p].count) }
        }
        return sum
    }
}
