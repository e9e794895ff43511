import SafeTensors
import Tensors

/// diffusers normalization.py: the adaptive LayerNorms of the MMDiT, under diffusers' class names. Each projects
/// SiLU(temb) [B, D] through `linear` to k·D and splits it into k modulation vectors [B, D], which modulate a
/// LayerNorm without affine parameters (eps 1e-6; `Compute.normModulate`).
protocol AdaptiveNorm: Sendable {
    var linear: Linear { get }
}

extension AdaptiveNorm {
    fileprivate static func load(_ scope: WeightScope, _ name: String, width: Int, chunks: Int, precision: Precision) throws -> Linear {
        try Linear(scope, "\(name).linear", in: width, out: chunks * width, precision: precision)
    }

    fileprivate func chunks(_ siluTemb: Tensor, _ count: Int, _ compute: Compute, _ loras: LayerLoras) -> [Tensor] {
        linear(siluTemb, compute, loras).chunked(count, axis: -1)
    }
}

/// The two that give a `Modulation`: AdaLayerNormZero and SD35AdaLayerNormZeroX.
protocol ModulationNorm: AdaptiveNorm {
    func callAsFunction(_ siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Modulation
}

/// AdaLayerNormZero: 6 chunks (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp).
struct AdaLayerNormZero: ModulationNorm {
    let linear: Linear
    init(_ scope: WeightScope, _ name: String, width: Int, precision: Precision) throws {
        linear = try Self.load(scope, name, width: width, chunks: 6, precision: precision)
    }
    func callAsFunction(_ siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Modulation { Modulation(chunks(siluTemb, 6, compute, loras)) }
}

/// SD35AdaLayerNormZeroX (SD3.5's dual-attention blocks): 9 chunks, AdaLayerNormZero's 6 then shift_msa2, scale_msa2,
/// gate_msa2 for the second attention.
struct SD35AdaLayerNormZeroX: ModulationNorm {
    let linear: Linear
    init(_ scope: WeightScope, _ name: String, width: Int, precision: Precision) throws {
        linear = try Self.load(scope, name, width: width, chunks: 9, precision: precision)
    }
    func callAsFunction(_ siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Modulation { Modulation(chunks(siluTemb, 9, compute, loras)) }
}

/// AdaLayerNormContinuous (norm_out, and the last block's norm1_context): 2 chunks, which diffusers splits as (scale, shift).
struct AdaLayerNormContinuous: AdaptiveNorm {
    let linear: Linear
    init(_ scope: WeightScope, _ name: String, width: Int, precision: Precision) throws {
        linear = try Self.load(scope, name, width: width, chunks: 2, precision: precision)
    }
    func callAsFunction(_ siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> (scale: Tensor, shift: Tensor) {
        let m = chunks(siluTemb, 2, compute, loras)
        return (m[0], m[1])
    }
}

/// What AdaLayerNormZero returns besides the normalized input (diffusers normalization.py), each [B, D]: the
/// attention's shift, scale and gate (msa), the MLP's (mlp), and SD35AdaLayerNormZeroX's second attention's (msa2).
struct Modulation {
    let shiftMSA, scaleMSA, gateMSA: Tensor
    let shiftMLP, scaleMLP, gateMLP: Tensor
    let shiftMSA2, scaleMSA2, gateMSA2: Tensor?

    /// From 6 chunks (AdaLayerNormZero) or 9 (SD35AdaLayerNormZeroX), in diffusers' chunk order.
    init(_ m: [Tensor]) {
        (shiftMSA, scaleMSA, gateMSA, shiftMLP, scaleMLP, gateMLP) = (m[0], m[1], m[2], m[3], m[4], m[5])
        (shiftMSA2, scaleMSA2, gateMSA2) = m.count == 9 ? (m[6], m[7], m[8]) : (nil, nil, nil)
    }
}

extension Compute {
    /// LN(x)·(1 + scale) + shift: LayerNorm without affine parameters (eps 1e-6), then modulation. x [B, N, D].
    func normModulate(_ x: Tensor, shift: Tensor, scale: Tensor) -> Tensor {
        normModulate(x, shift: shift, scale: scale, eps: 1e-6)
    }
}
