extension Compute {
    /// Uniform values in [-scale, scale) from a counter-based hash (SplitMix64 of seed ⊕ index), so
    /// generation splits across threads and gives the same tensor for any thread count.
    /// For benchmarks and tests only: torch-identical noise is `TorchCPUGenerator`'s job.
    public func randomUniform(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        let count = Tensor.count(of: shape)
        let key = seed &* 0x9E37_79B9_7F4A_7C15
        return Tensor(shape: shape) { out in
            parallelRanges(count, threads: threads, minimumPerThread: 1 << 16) { range in
                for i in range {
                    var z = key &+ UInt64(i) &* 0xBF58_476D_1CE4_E5B9
                    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                    z ^= z >> 31
                    out[i] = (Float(z >> 40) * 0x1p-24 * 2 - 1) * scale
                }
            }
        }
    }
}
