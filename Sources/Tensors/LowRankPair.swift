/// One LoRA pair applied beside a linear layer at run time, so strengths change without touching the base weight:
/// y = x·Wᵀ + b + Σ s·(x·Aᵀ)·Bᵀ, as peft's `LoraLayer.forward` (`result + lora_B(lora_A(x)) * scaling`).
/// A value: the caller passes a layer's pairs into each product, so a model holds no LoRA state.
public struct LowRankPair: Sendable {
    public let down: Weight  // A [r, in]
    public let up: Weight    // B [out, r]
    public let scale: Float  // strength · alpha / r
    public init(down: Weight, up: Weight, scale: Float) { (self.down, self.up, self.scale) = (down, up, scale) }
}

extension Compute {
    /// `linear(x, weight, bias:)` plus each pair's scaled low-rank product. A pair with scale 0 is skipped, so strength 0
    /// (or no pair) gives the base layer's bits.
    public func linear(_ x: Tensor, _ weight: Weight, bias: Tensor?, pairs: [LowRankPair]) -> Tensor {
        var y = linear(x, weight, bias: bias)  // [.., out]
        addPairs(pairs, of: x, to: &y)
        return y
    }

    /// y += Σ s·(x·Aᵀ)·Bᵀ over the pairs.
    func addPairs(_ pairs: [LowRankPair], of x: Tensor, to y: inout Tensor) {
        for pair in pairs where pair.scale != 0 {
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
