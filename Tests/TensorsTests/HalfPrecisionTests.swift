import Testing
@testable import Tensors

@Suite struct HalfPrecisionTests {
    @Test func f16RoundTripsEveryPattern() {
        for bits in 0...UInt16.max {
            let value = HalfPrecision.float(f16: bits)
            if value.isNaN { #expect(HalfPrecision.f16(value) & 0x7C00 == 0x7C00); continue }
            #expect(HalfPrecision.f16(value) == bits, "f16 \(bits) → \(value) → \(HalfPrecision.f16(value))")
            #expect(Float(Float16(bitPattern: bits)) == value, "f16 decode of \(bits)")
        }
    }

    @Test func bf16RoundTripsEveryPattern() {
        for bits in 0...UInt16.max {
            let value = HalfPrecision.float(bf16: bits)
            if value.isNaN { #expect(HalfPrecision.float(bf16: HalfPrecision.bf16(value)).isNaN); continue }
            #expect(HalfPrecision.bf16(value) == bits)
        }
    }

    @Test func bf16RoundsToNearestEven() {
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1.0).
        #expect(HalfPrecision.bf16(1 + 0x1p-8) == 0x3F80)
        #expect(HalfPrecision.bf16(1 + 3 * 0x1p-8) == 0x3F82)
        #expect(HalfPrecision.bf16(1 + 0x1p-8 + 0x1p-20) == 0x3F81)
        #expect(HalfPrecision.bf16(-2.5) == 0xC020)
    }

    @Test func f16MatchesSwiftFloat16OnRandomFloats() {
        var random = SeededRandom(9)
        for _ in 0..<200_000 {
            let exponent = Float(Int(random.next() % 60) - 30)
            let value = random.uniform() * Float.pow2(exponent)
            #expect(HalfPrecision.f16(value) == Float16(value).bitPattern, "f16 of \(value)")
        }
    }
}

extension Float {
    static func pow2(_ e: Float) -> Float { Float(sign: .plus, exponent: Int(e), significand: 1) }
}
