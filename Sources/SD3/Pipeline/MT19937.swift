/// The Mersenne Twister MT19937 (Matsumoto & Nishimura 1998) that torch's CPU generator and CPython's `random` both
/// run: the 624-word seeding recurrence, the twist that regenerates the words, and the output tempering.
public enum MT19937 {
    public static let count = 624

    /// `init_genrand(seed)`: state[0] = seed, state[i] = 1812433253·(state[i−1] ⊕ state[i−1] ≫ 30) + i.
    public static func seeded(_ seed: UInt32) -> [UInt32] {
        var state = [UInt32](repeating: 0, count: count)
        state[0] = seed
        for i in 1..<count { state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i) }
        return state
    }

    /// All 624 words regenerated at once (the state is used up).
    public static func twist(_ state: inout [UInt32]) {
        for i in 0..<count {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % count] & 0x7FFF_FFFF)
            state[i] = state[(i + 397) % count] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
        }
    }

    /// One word tempered into an output.
    public static func temper(_ word: UInt32) -> UInt32 {
        var y = word
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }
}
