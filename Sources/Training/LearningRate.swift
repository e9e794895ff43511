import Foundation

/// diffusers.optimization.get_scheduler (0.42.1) as the script calls it: a LambdaLR whose factor at scheduler step k
/// (k optimizer steps taken so far; the first optimizer step runs at k = 0) multiplies the base lr, in double.
/// The script's defaults: `--lr_scheduler constant`, `--lr_warmup_steps 500`, `--lr_num_cycles 1`; num_training_steps
/// is `--max_train_steps`. get_scheduler hands num_cycles only to cosine_with_restarts, so cosine keeps its own
/// default of 0.5 (a half cosine from lr to 0).
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Kind: String, CaseIterable, Sendable, Codable {
        case constant, constantWithWarmup = "constant_with_warmup", cosine, linear
    }

    public var kind: Kind
    public var baseLR: Double
    public var warmupSteps: Int
    public var trainingSteps: Int
    public var numCycles: Double = 0.5

    public init(kind: Kind, baseLR: Double, warmupSteps: Int = 0, trainingSteps: Int, numCycles: Double = 0.5) {
        (self.kind, self.baseLR, self.warmupSteps, self.trainingSteps, self.numCycles) = (kind, baseLR, warmupSteps, trainingSteps, numCycles)
    }

    /// The lambda of each get_*_schedule: warm-up `k / max(1, warmup)`, then the kind's decay.
    public func factor(at k: Int) -> Double {
        switch kind {
        case .constant:
            return 1
        case .constantWithWarmup:
            return k < warmupSteps ? Double(k) / Double(max(1, warmupSteps)) : 1
        case .linear:
            if k < warmupSteps { return Double(k) / Double(max(1, warmupSteps)) }
            return max(0, Double(trainingSteps - k) / Double(max(1, trainingSteps - warmupSteps)))
        case .cosine:
            if k < warmupSteps { return Double(k) / Double(max(1, warmupSteps)) }
            let progress = Double(k - warmupSteps) / Double(max(1, trainingSteps - warmupSteps))
            return max(0, 0.5 * (1 + Foundation.cos(Double.pi * numCycles * 2 * progress)))
        }
    }

    /// The lr of the optimizer step that follows `k` steps (LambdaLR's `base_lr * lmbda(last_epoch)`).
    public func lr(at k: Int) -> Double { baseLR * factor(at: k) }
}
