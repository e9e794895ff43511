/// The ranges a number must fall in where it enters (flags, a recalled PNG, the studio's fields, configs). Each bound
/// keeps float32 arithmetic finite: Float(1e39) is Inf, and a shift of 1e-320 makes the shifted sigmas 0/0.
public enum GenerationLimits {
    /// Denoising steps (diffusers sets no bound; 1000 is the scheduler's training timesteps).
    public static let steps = 1...1000
    /// Classifier-free guidance scale; above 100 every image is saturated noise.
    public static let guidance = 0.0...100.0
    /// Scheduler shift (SD3: 3.0); a subnormal or huge shift divides by ~0 in the sigma schedule.
    public static let shift = 0.001...1000.0
    /// Skip-layer guidance scale (diffusers' default 2.8).
    public static let skipLayerScale = 0.0...100.0
    /// LoRA strength; negative strengths subtract a LoRA, beyond ±100 its product leaves float range.
    public static let loraStrength = -100.0...100.0

    /// nil when `value` is finite and inside `range`, else a line naming `name` and the value.
    public static func problem(_ name: String, _ value: Double, _ range: ClosedRange<Double>) -> String? {
        value.isFinite && range.contains(value) ? nil
            : "\(name) \(number(value)): must be a finite number between \(number(range.lowerBound)) and \(number(range.upperBound))"
    }

    static func shiftProblem(_ name: String, _ value: Double) -> String? { problem(name, value, shift) }

    /// %g-style text: 1e+39 reads as 1e+39, 7.0 as 7.
    static func number(_ value: Double) -> String {
        value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }
}
