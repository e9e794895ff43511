import SafeTensors
import Tensors

/// diffusers `JointTransformerBlock` (attention.py) with `JointAttnProcessor2_0`: image and text streams,
/// each modulated by temb, attend jointly over [image tokens, text tokens]. The last block is
/// `context_pre_only`: its text stream is only an input. SD3.5 adds per-head RMS qk-norm and, in the
/// MMDiT-X blocks, a second image-only attention (`attn2`).
struct JointTransformerBlock: Sendable {
    struct Projections: Sendable {
        let q: Linear, k: Linear, v: Linear
        let normQ: Tensor?, normK: Tensor?  // [head_dim] RMS weights (qk_norm = "rms_norm")
    }

    let heads: Int
    let contextPreOnly: Bool
    /// diffusers' JointTransformerBlock: norm1 is SD35AdaLayerNormZeroX in dual-attention blocks, else AdaLayerNormZero;
    /// norm1_context is AdaLayerNormContinuous in the last block (context_pre_only), else AdaLayerNormZero.
    let norm1: any ModulationNorm
    enum ContextNorm: Sendable {
        case zero(AdaLayerNormZero)
        case continuous(AdaLayerNormContinuous)
        var linear: Linear {
            switch self {
            case let .zero(norm): norm.linear
            case let .continuous(norm): norm.linear
            }
        }
    }
    let norm1Context: ContextNorm
    let image: Projections, text: Projections
    let toOut: Linear, toAddOut: Linear?
    let attn2: Projections?, attn2Out: Linear?
    let ff1: Linear, ff2: Linear
    let ffContext1: Linear?, ffContext2: Linear?

    init(_ scope: WeightScope, width: Int, heads: Int, contextPreOnly: Bool, dualAttention: Bool,
         qkNorm: Bool, precision: Precision) throws {
        let d = width, headSize = width / heads
        self.heads = heads
        self.contextPreOnly = contextPreOnly
        norm1 = dualAttention ? try SD35AdaLayerNormZeroX(scope, "norm1", width: d, precision: precision)
                              : try AdaLayerNormZero(scope, "norm1", width: d, precision: precision)
        norm1Context = contextPreOnly ? .continuous(try AdaLayerNormContinuous(scope, "norm1_context", width: d, precision: precision))
                                      : .zero(try AdaLayerNormZero(scope, "norm1_context", width: d, precision: precision))
        let attn = scope.scope("attn")
        func projections(_ s: WeightScope, _ names: [String], _ norms: [String]) throws -> Projections {
            Projections(q: try Linear(s, names[0], in: d, out: d, precision: precision),
                        k: try Linear(s, names[1], in: d, out: d, precision: precision),
                        v: try Linear(s, names[2], in: d, out: d, precision: precision),
                        normQ: qkNorm ? try s.tensor("\(norms[0]).weight", shape: [headSize]) : nil,
                        normK: qkNorm ? try s.tensor("\(norms[1]).weight", shape: [headSize]) : nil)
        }
        image = try projections(attn, ["to_q", "to_k", "to_v"], ["norm_q", "norm_k"])
        text = try projections(attn, ["add_q_proj", "add_k_proj", "add_v_proj"], ["norm_added_q", "norm_added_k"])
        toOut = try Linear(attn, "to_out.0", in: d, out: d, precision: precision)
        toAddOut = contextPreOnly ? nil : try Linear(attn, "to_add_out", in: d, out: d, precision: precision)
        if dualAttention {
            let second = scope.scope("attn2")
            attn2 = try projections(second, ["to_q", "to_k", "to_v"], ["norm_q", "norm_k"])
            attn2Out = try Linear(second, "to_out.0", in: d, out: d, precision: precision)
        } else {
            attn2 = nil
            attn2Out = nil
        }
        ff1 = try Linear(scope, "ff.net.0.proj", in: d, out: 4 * d, precision: precision)
        ff2 = try Linear(scope, "ff.net.2", in: 4 * d, out: d, precision: precision)
        ffContext1 = contextPreOnly ? nil : try Linear(scope, "ff_context.net.0.proj", in: d, out: 4 * d, precision: precision)
        ffContext2 = contextPreOnly ? nil : try Linear(scope, "ff_context.net.2", in: 4 * d, out: d, precision: precision)
    }

    /// x [B, N, D] image tokens, context [B, T, D] text tokens, siluTemb = SiLU(temb) [B, D]; `loras`: the
    /// transformer's run-time LoRA pairs. Returns the new image tokens and (except in the last block) the new text tokens.
    func callAsFunction(_ x: Tensor, context: Tensor, siluTemb: Tensor, _ compute: Compute, _ loras: LayerLoras) -> (Tensor, Tensor?) {
        let m = norm1(siluTemb, compute, loras)  // each [B, D]
        let normed = attn2 == nil ? nil : compute.layerNorm(x, eps: 1e-6)  // [B, N, D], shared by both attentions
        let xHat = normed.map { compute.modulate($0, shift: m.shiftMSA, scale: m.scaleMSA) }
            ?? compute.normModulate(x, shift: m.shiftMSA, scale: m.scaleMSA)
        let c: Modulation?, cHat: Tensor
        switch norm1Context {
        case let .zero(norm):
            let modulation = norm(siluTemb, compute, loras)  // each [B, D]
            (c, cHat) = (modulation, compute.normModulate(context, shift: modulation.shiftMSA, scale: modulation.scaleMSA))
        case let .continuous(norm):
            let (scale, shift) = norm(siluTemb, compute, loras)  // each [B, D]
            (c, cHat) = (nil, compute.normModulate(context, shift: shift, scale: scale))
        }
        let n = x.dim(1)
        // Joint attention over [image (N), text (T)] tokens.
        let (qi, ki, vi) = project(image, xHat, compute, loras)
        let (qt, kt, vt) = project(text, cHat, compute, loras)
        let joint = compute.attention(query: Tensor.concat([qi, qt], axis: 1), key: Tensor.concat([ki, kt], axis: 1),
                                      value: Tensor.concat([vi, vt], axis: 1), heads: heads, operands: operands)  // [B, N+T, D]
        let parts = joint.split([n, context.dim(1)], axis: 1)
        var out = compute.gatedAdd(x, toOut(parts[0], compute, loras), gate: m.gateMSA)
        if let attn2, let attn2Out, let normed, let shift2 = m.shiftMSA2, let scale2 = m.scaleMSA2, let gate2 = m.gateMSA2 {
            let xHat2 = compute.modulate(normed, shift: shift2, scale: scale2)
            let (q, k, v) = project(attn2, xHat2, compute, loras)
            out = compute.gatedAdd(out, attn2Out(compute.attention(query: q, key: k, value: v, heads: heads, operands: operands), compute, loras),
                                   gate: gate2)
        }
        out = compute.gatedAdd(out, compute.feedForward(compute.normModulate(out, shift: m.shiftMLP, scale: m.scaleMLP), up: ff1.parts(loras), down: ff2.parts(loras)),
                               gate: m.gateMLP)
        guard let c, let toAddOut, let ffContext1, let ffContext2 else { return (out, nil) }
        var ctx = compute.gatedAdd(context, toAddOut(parts[1], compute, loras), gate: c.gateMSA)
        let mlp = compute.feedForward(compute.normModulate(ctx, shift: c.shiftMLP, scale: c.scaleMLP), up: ffContext1.parts(loras), down: ffContext2.parts(loras))
        ctx = compute.gatedAdd(ctx, mlp, gate: c.gateMLP)
        return (out, ctx)
    }

    /// Every linear layer of the block (for packing their weights ahead of the first step, and for LoRA checks).
    var linears: [Linear] {
        [norm1.linear, norm1Context.linear, image.q, image.k, image.v, text.q, text.k, text.v, toOut, ff1, ff2]
            + [toAddOut, attn2?.q, attn2?.k, attn2?.v, attn2Out, ffContext1, ffContext2].compactMap { $0 }
    }

    /// Attention's products take bf16 operands when the block's weights are bf16 (as torch runs a bf16 model).
    private var operands: OperandType { toOut.weight.precision.operandType }

    /// q, k, v [B, L, D]; with qk-norm, q and k are RMS-normalized per head over head_dim (eps 1e-6).
    private func project(_ p: Projections, _ h: Tensor, _ compute: Compute, _ loras: LayerLoras) -> (Tensor, Tensor, Tensor) {
        let qkv = compute.linears(h, [p.q, p.k, p.v].map { $0.parts(loras) })
        var q = qkv[0], k = qkv[1]
        if let normQ = p.normQ, let normK = p.normK {
            let headShape = [q.dim(0), q.dim(1), heads, q.dim(2) / heads]
            q = compute.rmsNorm(q.reshaped(headShape), weight: normQ, eps: 1e-6).reshaped(q.shape)
            k = compute.rmsNorm(k.reshaped(headShape), weight: normK, eps: 1e-6).reshaped(k.shape)
        }
        return (q, k, qkv[2])
    }
}
