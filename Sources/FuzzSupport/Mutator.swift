import Foundation

/// Seeded byte-level mutations of valid inputs, for the fuzz suites of every parser that reads untrusted
/// bytes (safetensors headers, configs, LoRA files, PNG chunks, A1111/ComfyUI text, tokenizer JSON).
/// The same seed gives the same inputs on every machine, so a failure names a case that can be replayed.
public struct Mutator: Sendable {
    private var state: UInt64
    private let corpus: [[UInt8]]

    public init(seed: UInt64, corpus: [[UInt8]]) {
        precondition(!corpus.isEmpty, "Mutator needs at least one valid input")
        state = seed
        self.corpus = corpus
    }

    /// SplitMix64.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }

    /// Bytes that break parsers: boundaries, JSON/TOML punctuation, digits, separators.
    static let interestingBytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0xC3, 0x0A, 0x0D, 0x22, 0x2C, 0x3A, 0x7B, 0x7D, 0x5B, 0x5D,
                                           0x2D, 0x2E, 0x30, 0x39, 0x65, 0x5C, 0x3C, 0x3E, 0x28, 0x29]
    /// Numbers that break code that trusts them.
    static let interestingNumbers = ["0", "-1", "1e308", "-1e308", "1e-320", "NaN", "nan", "Infinity", "-0", "4294967296",
                                     "9223372036854775807", "18446744073709551616", "99999999999999999999999", "2147483648", "3"]

    /// One mutated input: a corpus entry with 1–4 stacked mutations.
    public mutating func mutated() -> [UInt8] {
        var bytes = corpus[below(corpus.count)]
        for _ in 0...below(4) { mutate(&bytes) }
        return bytes
    }

    private mutating func mutate(_ bytes: inout [UInt8]) {
        let n = bytes.count
        switch below(10) {
        case 0 where n > 0: bytes[below(n)] ^= UInt8(1 << below(8))
        case 1 where n > 0: bytes[below(n)] = Self.interestingBytes[below(Self.interestingBytes.count)]
        case 2:
            let insert = (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: next()) }
            bytes.insert(contentsOf: insert, at: below(n + 1))
        case 3 where n > 0:
            let start = below(n)
            bytes.removeSubrange(start..<min(n, start + 1 + below(16)))
        case 4 where n > 0:
            let start = below(n), end = min(n, start + 1 + below(64))
            bytes.insert(contentsOf: Array(bytes[start..<end]), at: below(n + 1))
        case 5 where n > 0: bytes.removeSubrange(below(n)..<n)
        case 6:
            let other = corpus[below(corpus.count)]
            guard !other.isEmpty, n > 0 else { return }
            let from = below(other.count), at = below(n)
            bytes.replaceSubrange(at..<min(n, at + 1 + below(32)), with: other[from..<min(other.count, from + 1 + below(32))])
        case 7:
            // A run of digits (with sign, dot, exponent) replaced by a hostile number.
            let digits = bytes.indices.filter { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
            guard !digits.isEmpty else { return }
            var start = digits[below(digits.count)], end = start + 1
            func isNumeric(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x2D || b == 0x65 || b == 0x45 || b == 0x2B }
            while start > 0, isNumeric(bytes[start - 1]) { start -= 1 }
            while end < n, isNumeric(bytes[end]) { end += 1 }
            bytes.replaceSubrange(start..<end, with: Array(Self.interestingNumbers[below(Self.interestingNumbers.count)].utf8))
        case 8 where n > 0:
            let at = below(n)
            bytes.insert(contentsOf: [UInt8](repeating: bytes[at], count: 1 + below(256)), at: at)
        default:
            if n > 0 { bytes[below(n)] = UInt8(truncatingIfNeeded: next()) }
        }
    }
}

/// How many mutations a fuzz suite runs: `SD3_FUZZ_ITERATIONS` (`make fuzz` sets 1,000,000), else `standard`
/// (`make test`: 10,000, a few seconds per parser).
public enum Fuzz {
    public static func iterations(standard: Int = 10_000, environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        environment["SD3_FUZZ_ITERATIONS"].flatMap(Int.init).map { max(1, $0) } ?? standard
    }

    /// The most one case may take: a guard against blow-ups (a backtracking or quadratic parser takes seconds to
    /// minutes on these inputs), not a speed target. Measured in the CPU time of the thread that parses
    /// (`cpuSeconds`), so the time a loaded machine makes it wait does not count: by the wall clock, a case that
    /// takes milliseconds once took 13 s while the suite ran beside `stress --cpu 2` and other builds.
    public static let hangGuard = 5.0

    /// `body`'s result and the CPU seconds the calling thread spent in it (CLOCK_THREAD_CPUTIME_ID). Only for
    /// synchronous work, which stays on one thread.
    public static func cpuSeconds<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = threadCPUTime()
        let result = try body()
        return (result, threadCPUTime() - start)
    }

    static func threadCPUTime() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// The slowest case of a run, to assert the parser stays linear (a hang shows as a long case, not a stuck suite
    /// when the parser returns at all).
    public struct Slowest: Sendable {
        public var seconds = 0.0
        public var input: [UInt8] = []
    }

    /// Runs `body` on `iterations` mutations of `corpus` (seeded); returns the slowest case.
    public static func run(corpus: [[UInt8]], seed: UInt64, iterations: Int = iterations(), _ body: ([UInt8]) -> Void) -> Slowest {
        var mutator = Mutator(seed: seed, corpus: corpus)
        var slowest = Slowest()
        for _ in 0..<iterations {
            let input = mutator.mutated()
            let seconds = cpuSeconds { body(input) }.1
            if seconds > slowest.seconds { slowest = Slowest(seconds: seconds, input: input) }
        }
        return slowest
    }
}
