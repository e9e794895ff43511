import SafeTensors
import Tensors

/// Real-size weights without files, for benchmarks: every requested key gets uniform values,
/// seeded by the key, scaled like a fan-in initialisation (1/√in for matrices, 1 ± small for norms).
public final class RandomWeights: WeightProvider {
    public let source = "random weights"
    private let compute: Compute

    public init(compute: Compute) { self.compute = compute }

    public func contains(_ key: String) -> Bool { false }

    public func tensor(_ key: String, shape: [Int]) throws(SafeTensorsError) -> Tensor {
        var seed: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a of the key
        for byte in key.utf8 { seed = (seed ^ UInt64(byte)) &* 0x100_0000_01B3 }
        if shape.count == 1 {
            let noise = compute.randomUniform(shape, seed: seed, scale: 0.1)
            return Tensor(shape: shape, data: noise.data.map { key.hasSuffix("bias") ? $0 : 1 + $0 })
        }
        let fanIn = shape.dropFirst().reduce(1, *)
        return compute.randomUniform(shape, seed: seed, scale: 1 / Float(fanIn).squareRoot())
    }

    public func markUsed(_ key: String) {}
    public var unusedKeys: [String] { [] }
}
