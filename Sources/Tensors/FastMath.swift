/// exp and tanh without libm calls, for the activation and softmax loops, which spent more time in scalar libm
/// calls (expf, tanhf, expm1f: 11% of an MMDiT forward) than in anything but the matrix products. Plain scalar
/// code with no calls and no branches, so the optimiser vectorises the loops that use it (and debug builds,
/// which run the tests, stay fast: no generic SIMD types).
///
/// exp(x) = 2ⁿ · e^r with n = round(x / ln 2) and r = x − n·ln 2 split in two parts (Cody–Waite), |r| ≤ ln2/2;
/// e^r by its Taylor series to r⁷ (truncation < 5e-9 relative), so the result is within about 2 ulp of expf.
/// Overflow gives +inf, underflow 0 (below −87.33, where expf turns subnormal), NaN stays NaN.
@inline(__always)
func fastExp(_ x: Float) -> Float {
    let clamped = min(max(x, -87.33), 88.72)  // NaN becomes a bound here and is restored at the end
    // Adding 1.5·2²³ rounds to an integer held in the low mantissa bits.
    let shifted = clamped * 1.442695040888963 + 12_582_912
    let n = shifted - 12_582_912
    let r = (clamped - n * 0.693145751953125) - n * 1.428606765330187e-6
    var p: Float = 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    // 2ⁿ is built in the exponent field; n = 128 (x above 88.38, still finite) does not fit, so positive n
    // scale by 2ⁿ⁻¹ and then by 2.
    let exponent = Int32(bitPattern: shifted.bitPattern) &- 0x4B40_0000
    let high = exponent > 0
    var result = p * Float(bitPattern: UInt32(bitPattern: ((high ? exponent &- 1 : exponent) &+ 127) &<< 23))
    result = high ? result * 2 : result
    result = x < -87.33 ? 0 : result
    result = x > 88.72 ? .infinity : result
    return x.isNaN ? x : result
}

/// tanh(y) = sign(y)·(1 − e)/(1 + e) with e = exp(−2|y|): absolute error about 1e-7 for all y.
@inline(__always)
func fastTanh(_ y: Float) -> Float {
    let e = fastExp(-2 * abs(y))
    let t = (1 - e) / (1 + e)
    return y < 0 ? -t : t
}
