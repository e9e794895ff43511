import Foundation

/// `torch.Generator("cpu").manual_seed(seed)` followed by `torch.randn(shape, generator=g, dtype=torch.float32)`,
/// bit for bit (torch MT19937RNGEngine.h, DistributionTemplates.h `normal_fill`,
/// avx_mathfun.h). x86-64 torch runs the AVX2 kernel, whose log and sincos are Cephes polynomials compiled
/// with FMA contraction; the port below fuses exactly where GCC does.
public struct TorchCPUGenerator: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var left = 1
    private var next = 0
    /// normal_distribution<double>'s cached second sample (the numel < 16 path); manual_seed clears it.
    private var cachedNormal: Double?

    /// Seeds are 64-bit like torch's, but the engine keeps only the low 32 bits (`mt19937(seed)`).
    public init(seed: UInt64) {
        state = MT19937.seeded(UInt32(truncatingIfNeeded: seed))
    }

    /// The whole engine state (torch's get_rng_state holds the same: the 624 words, the position, the cached normal),
    /// so a resumed training run draws what the uninterrupted one would have.
    public struct Snapshot: Sendable, Equatable, Codable {
        public var words: [UInt32]
        public var left: Int
        public var next: Int
        public var cachedNormal: Double?
    }

    public var snapshot: Snapshot { Snapshot(words: state, left: left, next: next, cachedNormal: cachedNormal) }

    /// nil for a state the engine could not have reached (a damaged checkpoint).
    public init?(snapshot: Snapshot) {
        guard snapshot.words.count == 624, (1...624).contains(snapshot.left), (0...624).contains(snapshot.next),
              snapshot.cachedNormal?.isFinite ?? true else { return nil }
        (state, left, next, cachedNormal) = (snapshot.words, snapshot.left, snapshot.next, snapshot.cachedNormal)
    }

    /// One tempered 32-bit output.
    public mutating func random() -> UInt32 {
        left -= 1
        if left == 0 { regenerate() }
        let y = state[next]
        next += 1
        return MT19937.temper(y)
    }

    private mutating func regenerate() {
        MT19937.twist(&state)
        left = 624
        next = 0
    }

    /// uniform_real_distribution<float>(0, 1): 24 random bits · 2⁻²⁴.
    mutating func uniformFloat() -> Float { Float(random() & 0xFF_FFFF) * 0x1p-24 }

    /// uniform_real_distribution<double>(0, 1): 53 bits of random64() · 2⁻⁵³.
    mutating func uniformDouble() -> Double {
        let high = UInt64(random()), low = UInt64(random())
        return Double(((high << 32) | low) & ((1 << 53) - 1)) * 0x1p-53
    }

    /// torch.randn(shape) in float32.
    public mutating func randn(_ shape: [Int]) -> [Float] {
        let n = shape.reduce(1, *)
        if n < 16 {
            return (0..<n).map { _ in Float(normalDouble()) }
        }
        var data = (0..<n).map { _ in uniformFloat() }
        data.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, through: n - 16, by: 16) { Self.normalFill16(p.baseAddress! + i) }
            if n % 16 != 0 {
                let tail = p.baseAddress! + n - 16
                for i in 0..<16 { tail[i] = uniformFloat() }
                Self.normalFill16(tail)
            }
        }
        return data
    }

    /// torch.rand(count) in float32 (uniform_ on CPU: uniform_real_distribution<float>(0, 1) per element, in order).
    public mutating func rand(_ count: Int) -> [Float] { (0..<count).map { _ in uniformFloat() } }

    /// torch.normal(mean, std, size: (count,)) in float32. Below 16 elements normal_kernel's serial path,
    /// at::normal_distribution<double>(mean, std): sample · std + mean in double, then rounded to float; from 16 on
    /// normal_fill, whose AVX2 kernel ends in fmadd(radius · cos, std, mean) on the randn values.
    public mutating func normal(mean: Double, std: Double, count: Int) -> [Float] {
        if count < 16 { return (0..<count).map { _ in Float(normalDouble() * std + mean) } }
        let (m, s) = (Float(mean), Float(std))
        return randn([count]).map { m.addingProduct($0, s) }
    }

    /// at::normal_distribution<double>(0, 1) with its cached pair (used below 16 elements).
    mutating func normalDouble() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let r = (-2 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2 * Double.pi * u1
        cachedNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    /// normal_fill_16_AVX2: Box–Muller on uniforms j and j + 8 of a block of 16, in place.
    static func normalFill16(_ data: UnsafeMutablePointer<Float>) {
        let twoPi = Float(2.0 * Double.pi)
        for j in 0..<8 {
            let u1 = 1 - data[j]
            let u2 = data[j + 8]
            let radius = (-2 * cephesLog(u1)).squareRoot()
            let (sine, cosine) = cephesSinCos(twoPi * u2)
            // fmadd(n, std = 1, mean = 0) leaves the product unchanged.
            data[j] = radius * cosine
            data[j + 8] = radius * sine
        }
    }

    /// avx_mathfun.h log256_ps for one lane (valid for x in (0, 1]).
    static func cephesLog(_ input: Float) -> Float {
        var x = max(input, Float(bitPattern: 0x0080_0000))  // min_norm_pos
        let exponent = Int32(bitPattern: x.bitPattern >> 23) - 0x7F
        x = Float(bitPattern: (x.bitPattern & ~0x7F80_0000) | Float(0.5).bitPattern)
        var e = Float(exponent) + 1
        let below = x < 0.707106781186547524
        let tmp: Float = below ? x : 0
        x = x - 1
        e = e - (below ? 1 : 0)
        x = x + tmp
        let z = x * x
        let coefficients: [Float] = [7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
                                     -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1]
        var y = coefficients[0]
        for c in coefficients.dropFirst() { y = c.addingProduct(y, x) }  // Horner steps, fused
        y = y * x
        y = (e * -2.12194440e-4).addingProduct(y, z)  // y·z + e·q1, fused
        y = y.addingProduct(-0.5, z)  // y − 0.5·z, fused
        let sum = x + y
        return sum.addingProduct(e, 0.693359375)  // x + e·q2, fused
    }

    /// avx_mathfun.h sincos256_ps for one lane: (sin, cos).
    static func cephesSinCos(_ input: Float) -> (Float, Float) {
        var signSin = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7FFF_FFFF)
        var j = Int32(x * 1.27323954473516)  // 4/π, truncated
        j = (j &+ 1) & ~1
        let y = Float(j)
        signSin ^= UInt32(bitPattern: (j & 4) << 29)
        let useSinePolynomial = (j & 2) == 0
        x = x.addingProduct(y, -0.78515625)  // extended-precision range reduction, fused
        x = x.addingProduct(y, -2.4187564849853515625e-4)
        x = x.addingProduct(y, -3.77489497744594108e-8)
        let signCos = UInt32(bitPattern: (~(j &- 2) & 4) << 29)
        let z = x * x
        var c: Float = 2.443315711809948E-005
        c = Float(-1.388731625493765E-003).addingProduct(c, z)
        c = Float(4.166664568298827E-002).addingProduct(c, z)
        c = c * z
        c = (-(z * 0.5)).addingProduct(c, z)  // c·z − 0.5·z, fused
        c = c + 1
        var s: Float = -1.9515295891E-4
        s = Float(8.3321608736E-3).addingProduct(s, z)
        s = Float(-1.6666654611E-1).addingProduct(s, z)
        s = s * z
        s = x.addingProduct(s, x)  // s·z·x + x, fused
        let sine = useSinePolynomial ? s : c
        let cosine = useSinePolynomial ? c : s
        return (Float(bitPattern: sine.bitPattern ^ signSin), Float(bitPattern: cosine.bitPattern ^ signCos))
    }
}
