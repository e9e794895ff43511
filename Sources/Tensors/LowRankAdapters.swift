import Synchronization

/// LoRA pairs applied beside one linear layer at run time, so strengths change without touching the base weight:
/// y = x·Wᵀ + b + Σ s·(x·Aᵀ)·Bᵀ, as peft's `LoraLayer.forward` (`result + lora_B(lora_A(x)) * scaling`).
/// A pair with scale 0 is skipped, so strength 0 (or no pair) gives the base layer's bits.
public final class LowRankAdapters: Sendable {
    public struct Pair: Sendable {
        public let down: Weight  // A [r, in]
        public let up: Weight    // B [out, r]
        public let scale: Float  // strength · alpha / r
        public init(down: Weight, up: Weight, scale: Float) { (self.down, self.up, self.scale) = (down, up, scale) }
    }

    private let state = Mutex<[Pair]>([])
    public init() {}

    public var pairs: [Pair] {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

extension Compute {
    /// `linear(x, weight, bias:)` plus each adapter pair's scaled low-rank product.
    public func linear(_ x: Tensor, _ weight: Weight, bias: Tensor?, adapters: LowRankAdapters?) -> Tensor {
        var y = linear(x, weight, bias: bias)  // [.., out]
        addAdapters(adapters, of: x, to: &y)
        return y
    }

    /// y += Σ s·(x·Aᵀ)·Bᵀ over the adapters' pairs.
    func addAdapters(_ adapters: LowRankAdapters?, of x: Tensor, to y: inout Tensor) {
        guard let adapters else { return }
        for pair in adapters.pairs where pair.scale != 0 {
            let delta = linear(linear(x, pair.down, bias: nil), pair.up, bias: nil)  // [.., r] → [.., out]
            let scale = pair.scale
            y.data.withUnsafeMutableBufferPointer { out in
                delta.data.withUnsafeBufferPointer { d in
                    for i in 0..<out.count { out[i] += d[i] * scale }
                }
            }
        }
    }
}
