/// Which scheduler steps a run: the model folder's FlowMatchEulerDiscreteScheduler, or Flash-SD3's
/// FlashFlowMatchEulerDiscreteScheduler (`--scheduler flash`), which reads only the folder config's shift.
public enum SchedulerKind: String, Sendable, Equatable, CaseIterable {
    case euler, flash
}

/// A prepared schedule and what stepping it needs: the flash scheduler keeps the run's generator for its re-noise.
public enum Sampler: Sendable {
    case euler(FlowMatchEulerDiscreteScheduler)
    case flash(FlashFlowMatchEulerDiscreteScheduler, noise: VariationNoise)

    public var timesteps: [Float] {
        switch self {
        case let .euler(s): return s.timesteps
        case let .flash(s, _): return s.timesteps
        }
    }

    /// N + 1 sigmas, the last 0.
    public var sigmas: [Float] {
        switch self {
        case let .euler(s): return s.sigmas
        case let .flash(s, _): return s.sigmas
        }
    }

    /// One step from `sample` [B, C, h, w] with the guided velocity at schedule index `index`.
    public mutating func step(_ velocity: [Float], sample: [Float], index: Int, shape: [Int]) -> [Float] {
        switch self {
        case let .euler(s):
            return s.step(velocity, sample: sample, index: index)
        case .flash(let s, var noise):
            let next = s.step(velocity, sample: sample, index: index, shape: shape, generator: &noise)
            self = .flash(s, noise: noise)
            return next
        }
    }
}
