/// 8-bit floats as safetensors stores them (`F8_E4M3` is PyTorch's `float8_e4m3fn`, the format of ComfyUI's
/// `t5xxl_fp8_e4m3fn.safetensors`).
enum Float8 {
    /// E4M3FN (OCP 8-bit FP spec, "FN" = finite + NaN): sign, 4 exponent bits with bias 7, 3 mantissa bits.
    /// No infinities; only S.1111.111 (0x7F, 0xFF) is NaN, so exponent 15 holds normal numbers up to ±448.
    /// Exponent 0 is subnormal: m/8 · 2⁻⁶.
    static let e4m3fn: [Float] = (0..<256).map { byte in
        let sign: Float = byte & 0x80 != 0 ? -1 : 1
        let exponent = (byte >> 3) & 0xF, mantissa = byte & 0x7
        if exponent == 0xF && mantissa == 0x7 { return .nan }
        if exponent == 0 { return sign * Float(mantissa) / 8 * 0x1p-6 }
        return sign * (1 + Float(mantissa) / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }
}
