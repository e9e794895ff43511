import SafeTensors
import Tensors

/// diffusers normalization.py: the adaptive LayerNorms of the MMDiT. Each projects SiLU(temb) [B, D]
/// to k·D modulation vectors and applies them to a LayerNorm without affine parameters (eps 1e-6).
struct AdaLayerNorm: Sendable {
    /// AdaLayerNormZero: 6 chunks (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp);
    /// SD35AdaLayerNormZeroX: 9 (the 6, then shift_msa2, scale_msa2, gate_msa2);
    /// AdaLayerNormContinuous: 2, in the order (scale, shift).
    let chunks: Int
    let linear: Linear

    init(_ scope: WeightScope, _ name: String, width: Int, chunks: Int, precision: Precision) throws {
        self.chunks = chunks
        linear = try Linear(scope, "\(name).linear", in: width, out: chunks * width, precision: precision)
    }

    /// The modulation vectors, each [B, D], from SiLU(temb) [B, D].
    func modulation(_ siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> [Tensor] {
        linear(siluTemb, compute, loras).chunked(chunks, axis: -1)
    }

    /// AdaLayerNormZero's (or SD35AdaLayerNormZeroX's) chunks under diffusers' names.
    func zero(_ siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Modulation {
        Modulation(modulation(siluTemb, compute, loras))
    }

    /// AdaLayerNormContinuous's two chunks, which diffusers splits as (scale, shift).
    func continuous(_ siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> (scale: Tensor, shift: Tensor) {
        let m = modulation(siluTemb, compute, loras)
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
