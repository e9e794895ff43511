import Foundation
import SD3

/// Python's `random` module after `random.seed(n)` (what accelerate's set_seed does), for the script's
/// `--random_flip`: `random.random() < 0.5` per image. CPython's _randommodule.c: MT19937 seeded by `init_by_array`
/// with the 32-bit words of |n| (least significant first, at least one); `random()` is (a·2²⁶ + b) / 2⁵³ with
/// a = next >> 5, b = next >> 6.
public struct PythonRandom: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt64) {
        var key: [UInt32] = [UInt32(truncatingIfNeeded: seed)]
        if seed >> 32 != 0 { key.append(UInt32(truncatingIfNeeded: seed >> 32)) }
        state = MT19937.seeded(19_650_218)
        // init_by_array: two non-linear mixing passes over the key.
        var i = 1, j = 0
        for _ in 0..<max(624, key.count) {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_664_525)) &+ key[j] &+ UInt32(j)
            i += 1
            j += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<623 {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_566_083_941)) &- UInt32(i)
            i += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
        }
        state[0] = 0x8000_0000
    }

    /// genrand_uint32: one tempered output, the 624 words regenerated when used up.
    public mutating func next() -> UInt32 {
        if index >= 624 {
            MT19937.twist(&state)
            index = 0
        }
        let y = state[index]
        index += 1
        return MT19937.temper(y)
    }

    /// random.random(): a double in [0, 1) from 53 random bits.
    public mutating func random() -> Double {
        let a = Double(next() >> 5), b = Double(next() >> 6)
        return (a * 67_108_864 + b) * (1 / 9_007_199_254_740_992)
    }
}
