import Foundation

/// A1111's "Variation seed" (its `subseed`) and "Variation seed strength": the starting noise is the seed's noise
/// moved toward the variation seed's noise by spherical interpolation, so small strengths give nearby images.
public struct VariationSeed: Sendable, Equatable, Codable {
    public var seed: UInt64
    /// 0 is the base seed's noise exactly, 1 the variation seed's exactly.
    public var strength: Double

    public init(seed: UInt64, strength: Double) { (self.seed, self.strength) = (seed, strength) }
}

/// Where the noise of a generation comes from: a torch CPU generator, or two of them mixed.
public protocol NormalSource {
    /// torch.randn(shape) in float32, row-major.
    mutating func randn(_ shape: [Int]) -> [Float]
}

extension TorchCPUGenerator: NormalSource {}

/// Each draw is the seed's draw slerped toward the variation seed's draw of the same shape (A1111
/// modules/rng.py `ImageRNG.first`, which mixes the one noise tensor of txt2img; img2img also draws the VAE
/// posterior sample, and both draws are mixed so that strength 1 is the variation seed's image, not a hybrid).
public struct VariationNoise: NormalSource, Sendable {
    private var base: TorchCPUGenerator
    private var variation: TorchCPUGenerator?
    private let strength: Double

    public init(seed: UInt64, variation: VariationSeed?) {
        base = TorchCPUGenerator(seed: seed)
        // Strength 0 skips the variation generator entirely, as A1111's `subseed_strength != 0` test does.
        if let variation, variation.strength != 0 {
            self.variation = TorchCPUGenerator(seed: variation.seed)
            strength = variation.strength
        } else {
            strength = 0
        }
    }

    public mutating func randn(_ shape: [Int]) -> [Float] {
        let low = base.randn(shape)
        guard variation != nil else { return low }
        let high = variation!.randn(shape)
        return Self.slerp(strength, low, high, shape: shape)
    }

    /// A1111's `slerp(val, low, high)` (modules/rng.py, from discuss.pytorch.org/t/32475/3) on one image's noise
    /// [C, H, W] (a leading batch of 1 is allowed). Its `dim=1` normalises along H: every (channel, column) vector
    /// of H values gets its own angle; we keep that, so a variation means the same noise as in A1111 with RNG: CPU.
    /// Two of its quirks are handled on purpose: strength 1 returns `high` exactly (A1111 does too, except in
    /// its near-parallel branch, which returns `low`), and the near-parallel fallback (mean cosine > 0.9995) is
    /// the lerp low·(1−t) + high·t, where A1111 swaps the weights; with equal seeds both give the same bits.
    /// Sums run in Double; results are rounded to Float once.
    static func slerp(_ t: Double, _ low: [Float], _ high: [Float], shape: [Int]) -> [Float] {
        if t == 0 { return low }
        if t == 1 { return high }
        let h = shape.count >= 2 ? shape[shape.count - 2] : 1
        let w = shape.last ?? low.count
        let columns = low.count / max(1, h)
        // cos of the angle between the two vectors of each column; vector k is (plane k / w, column k % w).
        var cosines = [Double](repeating: 0, count: columns)
        for k in 0..<columns {
            let start = (k / w) * h * w + k % w
            var ll = 0.0, hh = 0.0, lh = 0.0
            for y in 0..<h {
                let a = Double(low[start + y * w]), b = Double(high[start + y * w])
                ll += a * a
                hh += b * b
                lh += a * b
            }
            cosines[k] = ll > 0 && hh > 0 ? lh / (ll.squareRoot() * hh.squareRoot()) : 1
        }
        if cosines.reduce(0, +) / Double(max(1, columns)) > 0.9995 {
            return zip(low, high).map { a, b in Float(Double(a) * (1 - t) + Double(b) * t) }
        }
        var out = [Float](repeating: 0, count: low.count)
        for k in 0..<columns {
            let omega = acos(min(1, max(-1, cosines[k])))
            let so = sin(omega)
            // A column parallel to its partner has no plane to rotate in: lerp it.
            let (wl, wh) = so < 1e-12 ? (1 - t, t) : (sin((1 - t) * omega) / so, sin(t * omega) / so)
            let start = (k / w) * h * w + k % w
            for y in 0..<h {
                let i = start + y * w
                out[i] = Float(wl * Double(low[i]) + wh * Double(high[i]))
            }
        }
        return out
    }
}
