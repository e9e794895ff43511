import SafeTensors
import Tensors

/// torch.nn.Linear: y = x·Wᵀ + b with W [out, in] prepared once for the backend.
public struct Linear: Sendable {
    public let weight: Weight
    public let bias: Tensor?
    /// The weight's full key (`transformer_blocks.0.attn.to_q.weight`): where run-time LoRA pairs find this layer.
    public let key: String

    public init(_ scope: WeightScope, _ name: String, in inFeatures: Int, out outFeatures: Int,
                bias hasBias: Bool = true, precision: Precision) throws {
        try self.init(scope, name, in: inFeatures, out: outFeatures, bias: hasBias, format: precision == .bf16 ? .bf16 : .fp32)
    }

    public init(_ scope: WeightScope, _ name: String, in inFeatures: Int, out outFeatures: Int,
                bias hasBias: Bool = true, format: WeightFormat) throws {
        let layer = scope.scope(name)
        weight = Weight(try layer.tensor("weight", shape: [outFeatures, inFeatures]), format: format)
        bias = hasBias ? try layer.tensor("bias", shape: [outFeatures]) : nil
        key = layer.key("weight")
    }

    /// x [.., in] → [.., out], plus this layer's pairs among `loras` (`.none` for a model that takes no LoRAs).
    public func callAsFunction(_ x: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Tensor {
        compute.linear(x, weight, bias: bias, pairs: loras[key])
    }

    /// (weight, bias, this layer's pairs among `loras`), as Compute's multi-layer ops take them.
    public func parts(_ loras: LayerLoras) -> (Weight, Tensor?, [LowRankPair]) { (weight, bias, loras[key]) }

    /// [out, in]: the shape a LoRA pair on this layer must give.
    var loraLayer: (key: String, shape: [Int]) { (key, weight.shape) }
}

/// torch.nn.LayerNorm over the last axis with affine weight and bias [D].
public struct LayerNorm: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(_ scope: WeightScope, _ name: String, width: Int, eps: Float) throws {
        let layer = scope.scope(name)
        weight = try layer.tensor("weight", shape: [width])
        bias = try layer.tensor("bias", shape: [width])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor, _ compute: Compute) -> Tensor {
        compute.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
}

/// torch.nn.Embedding: rows of a [vocab, D] table, kept in fp32 (a lookup, not a product).
public struct Embedding: Sendable {
    public let table: Tensor

    public init(_ scope: WeightScope, _ name: String, count: Int, width: Int) throws {
        table = try scope.tensor(name, shape: [count, width])
    }

    /// ids [B, L] → [B, L, D]; an id outside the table is a precondition failure (tokenizers emit valid ids).
    public func callAsFunction(_ ids: [[Int]]) -> Tensor {
        let width = table.dim(1), rows = table.dim(0)
        let length = ids.first?.count ?? 0
        precondition(ids.allSatisfy { $0.count == length }, "Embedding: ragged batch")
        var data = [Float]()
        data.reserveCapacity(ids.count * length * width)
        for row in ids {
            for id in row {
                precondition(id >= 0 && id < rows, "Embedding: id \(id) outside the \(rows)-row table")
                data.append(contentsOf: table.data[id * width..<(id + 1) * width])
            }
        }
        return Tensor(shape: [ids.count, length, width], data: data)
    }
}
