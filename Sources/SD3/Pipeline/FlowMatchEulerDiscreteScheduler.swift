import Foundation

/// diffusers `FlowMatchEulerDiscreteScheduler` (scheduling_flow_match_euler_discrete.py, 0.42.1), reproduced
/// operation by operation: the training sigmas in float32, the inference schedule in float64 (numpy), then
/// float32. `set_timesteps` shifts sigmas that the constructor already shifted (the shifted
/// sigma_min is shifted again), which is what diffusers does and therefore what we do.
public struct FlowMatchEulerDiscreteScheduler: Sendable {
    public struct Config: Decodable, Sendable, Equatable {
        public var numTrainTimesteps: Int = 1000
        public var shift: Double = 1.0
        public var useDynamicShifting: Bool = false
        public var shiftTerminal: Double?
        public var timeShiftType: String = "exponential"
        public var baseShift: Double = 0.5, maxShift: Double = 1.15
        public var baseImageSeqLen: Double = 256, maxImageSeqLen: Double = 4096
        public var unsupported: [String] = []

        enum CodingKeys: String, CodingKey {
            case numTrainTimesteps = "num_train_timesteps", shift, useDynamicShifting = "use_dynamic_shifting"
            case shiftTerminal = "shift_terminal", timeShiftType = "time_shift_type", invertSigmas = "invert_sigmas"
            case useKarrasSigmas = "use_karras_sigmas", useExponentialSigmas = "use_exponential_sigmas"
            case useBetaSigmas = "use_beta_sigmas", stochasticSampling = "stochastic_sampling"
            case baseShift = "base_shift", maxShift = "max_shift", baseImageSeqLen = "base_image_seq_len", maxImageSeqLen = "max_image_seq_len"
        }

        public init(shift: Double, numTrainTimesteps: Int = 1000) {
            self.shift = shift
            self.numTrainTimesteps = numTrainTimesteps
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? 1000
            shift = try c.decodeIfPresent(Double.self, forKey: .shift) ?? 1.0
            useDynamicShifting = try c.decodeIfPresent(Bool.self, forKey: .useDynamicShifting) ?? false
            shiftTerminal = try c.decodeIfPresent(Double.self, forKey: .shiftTerminal)
            timeShiftType = try c.decodeIfPresent(String.self, forKey: .timeShiftType) ?? "exponential"
            baseShift = try c.decodeIfPresent(Double.self, forKey: .baseShift) ?? 0.5
            maxShift = try c.decodeIfPresent(Double.self, forKey: .maxShift) ?? 1.15
            baseImageSeqLen = try c.decodeIfPresent(Double.self, forKey: .baseImageSeqLen) ?? 256
            maxImageSeqLen = try c.decodeIfPresent(Double.self, forKey: .maxImageSeqLen) ?? 4096
            for key in [CodingKeys.invertSigmas, .useKarrasSigmas, .useExponentialSigmas, .useBetaSigmas, .stochasticSampling]
            where try c.decodeIfPresent(Bool.self, forKey: key) == true {
                unsupported.append(key.rawValue)
            }
        }
    }

    public let config: Config
    /// The training schedule's ends, float32 values as Double (`self.sigmas[0].item()`, `[-1].item()`).
    public let sigmaMax: Double
    public let sigmaMin: Double
    /// After `setTimesteps`: N timesteps and N + 1 sigmas (the last 0).
    public private(set) var timesteps: [Float] = []
    public private(set) var sigmas: [Float] = []

    public init(config: Config) throws {
        guard config.unsupported.isEmpty else {
            throw SchedulerError.unsupported("FlowMatchEulerDiscreteScheduler option(s) \(config.unsupported.joined(separator: ", "))")
        }
        guard ["exponential", "linear"].contains(config.timeShiftType) else {
            throw SchedulerError.unsupported("time_shift_type '\(config.timeShiftType)'")
        }
        guard config.numTrainTimesteps > 1, config.shift > 0 else { throw SchedulerError.unsupported("num_train_timesteps or shift out of range") }
        self.config = config
        let n = Float(config.numTrainTimesteps)
        // Constructor: torch float32 ops on linspace(1, N, N)[::-1] / N.
        func trainSigma(_ t: Float) -> Float {
            let s = t / n
            if config.useDynamicShifting { return s }
            let shift = Float(config.shift)
            return shift * s / (1 + (shift - 1) * s)
        }
        sigmaMax = Double(trainSigma(n))
        sigmaMin = Double(trainSigma(1))
    }

    /// `set_timesteps(num_inference_steps, mu=)`: linspace in float64 from sigma_max·N to sigma_min·N.
    public mutating func setTimesteps(_ steps: Int, mu: Double? = nil) throws {
        guard steps > 0 else { throw SchedulerError.invalidSteps(steps) }
        if config.useDynamicShifting && mu == nil { throw SchedulerError.unsupported("use_dynamic_shifting needs mu") }
        let n = Double(config.numTrainTimesteps)
        let start = sigmaMax * n, stop = sigmaMin * n
        // numpy.linspace: i·step + start, the last element exactly `stop`.
        let step = steps > 1 ? (stop - start) / Double(steps - 1) : 0
        var s = (0..<steps).map { i in (i == steps - 1 && steps > 1 ? stop : Double(i) * step + start) / n }
        if config.useDynamicShifting, let mu {
            s = s.map { t in
                config.timeShiftType == "exponential" ? Foundation.exp(mu) / (Foundation.exp(mu) + (1 / t - 1)) : mu / (mu + (1 / t - 1))
            }
        } else {
            let shift = config.shift
            s = s.map { shift * $0 / (1 + (shift - 1) * $0) }
        }
        if let terminal = config.shiftTerminal, terminal != 0 {
            // stretch_shift_to_terminal: 1 − (1 − s) / ((1 − s_last) / (1 − terminal)).
            let scale = (1 - s[s.count - 1]) / (1 - terminal)
            s = s.map { 1 - (1 - $0) / scale }
        }
        sigmas = s.map { Float($0) } + [0]
        timesteps = sigmas.dropLast().map { $0 * Float(config.numTrainTimesteps) }
    }

    /// The pipeline's `calculate_shift`: μ linear in the image token count between the config's two anchors.
    public func mu(imageSequenceLength n: Int) -> Double {
        let m = (config.maxShift - config.baseShift) / (config.maxImageSeqLen - config.baseImageSeqLen)
        let b = config.baseShift - m * config.baseImageSeqLen
        return Double(n) * m + b
    }

    /// img2img (`StableDiffusion3Img2ImgPipeline.get_timesteps`): with strength s the first
    /// int(max(N − min(N·s, N), 0)) steps are skipped (float arithmetic, truncated); returns that begin index.
    public func beginIndex(strength: Double) -> Int {
        let total = Double(timesteps.count)
        return Int(max(total - min(total * strength, total), 0))
    }

    /// `step`: prev = sample + (σ[i+1] − σ[i])·v, each op rounded to float32 like torch.
    public func step(_ velocity: [Float], sample: [Float], index: Int) -> [Float] {
        precondition(index >= 0 && index + 1 < sigmas.count, "scheduler step \(index) outside \(sigmas.count - 1) steps")
        let dt = sigmas[index + 1] - sigmas[index]
        return zip(sample, velocity).map { s, v in
            let change = dt * v
            return s + change
        }
    }

    /// `scale_noise`: x = σ·noise + (1 − σ)·x0 at the img2img begin index.
    public func scaleNoise(_ x0: [Float], noise: [Float], index: Int) -> [Float] {
        Self.scaleNoise(x0, noise: noise, sigma: sigmas[index])
    }

    /// σ·noise + (1 − σ)·x0, each op rounded to float32 like torch (Flash-SD3's scheduler shares it).
    static func scaleNoise(_ x0: [Float], noise: [Float], sigma: Float) -> [Float] {
        zip(x0, noise).map { x, e in
            let a = sigma * e
            let b = (1 - sigma) * x
            return a + b
        }
    }
}

public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    case unsupported(String)
    case invalidSteps(Int)

    public var description: String {
        switch self {
        case let .unsupported(what): return "scheduler: unsupported \(what)"
        case let .invalidSteps(n): return "scheduler: \(n) steps; need at least 1"
        }
    }
}
