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
    func modulation(_ siluTemb: Tensor, _ compute: Compute) -> [Tensor] {
        linear(siluTemb, compute).chunked(chunks, axis: -1)
    }
}

extension Compute {
    /// LN(x)·(1 + scale) + shift: LayerNorm without affine parameters (eps 1e-6), then modulation. x [B, N, D].
    func normModulate(_ x: Tensor, shift: Tensor, scale: Tensor) -> Tensor {
        normModulate(x, shift: shift, scale: scale, eps: 1e-6)
    }
}
