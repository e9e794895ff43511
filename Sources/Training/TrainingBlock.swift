import SafeTensors
import Tensors

/// diffusers `JointTransformerBlock` (see SD3's JointTransformerBlock) for training: the same forward, on frozen
/// weights with LoRA pairs beside any of its linears, keeping what its backward needs (`Activations`), and the backward.
struct TrainingBlock {
    /// q, k, v of one attention; with qk-norm, per-head RMS weights [head_dim].
    struct Projections {
        let q: AdaptedLinear, k: AdaptedLinear, v: AdaptedLinear
        let normQ: Tensor?, normK: Tensor?
    }

    /// One attention's projections in the forward: q, k before the qk-norm and after, v.
    struct Projected {
        let input: Tensor, rawQ: Tensor, rawK: Tensor, q: Tensor, k: Tensor, v: Tensor
    }

    let heads: Int
    let contextPreOnly: Bool
    /// The attention's product operands: as the linears' (bf16 only with a bf16 base).
    let operands: OperandType
    let norm1: AdaptedLinear, norm1Context: AdaptedLinear  // SiLU(temb) [B, D] → 6 or 9 (2 in the last block's context) × D
    let image: Projections, text: Projections
    let toOut: AdaptedLinear, toAddOut: AdaptedLinear?
    let attn2: Projections?, attn2Out: AdaptedLinear?
    let ff1: AdaptedLinear, ff2: AdaptedLinear
    let ffContext1: AdaptedLinear?, ffContext2: AdaptedLinear?

    init(_ scope: WeightScope, width d: Int, heads: Int, contextPreOnly: Bool, dualAttention: Bool, qkNorm: Bool,
         precision: Precision, products: OperandType, loras: LoraParameters, used: inout Set<String>) throws {
        self.heads = heads
        self.contextPreOnly = contextPreOnly
        operands = precision == .bf16 ? products : .fp32
        func linear(_ s: WeightScope, _ name: String, _ inWidth: Int, _ outWidth: Int) throws -> AdaptedLinear {
            try AdaptedLinear(s, name, in: inWidth, out: outWidth, precision: precision, products: products, loras: loras, used: &used)
        }
        func projections(_ s: WeightScope, _ names: [String], _ norms: [String]) throws -> Projections {
            Projections(q: try linear(s, names[0], d, d), k: try linear(s, names[1], d, d), v: try linear(s, names[2], d, d),
                        normQ: qkNorm ? try s.tensor("\(norms[0]).weight", shape: [d / heads]) : nil,
                        normK: qkNorm ? try s.tensor("\(norms[1]).weight", shape: [d / heads]) : nil)
        }
        norm1 = try linear(scope, "norm1.linear", d, (dualAttention ? 9 : 6) * d)
        norm1Context = try linear(scope, "norm1_context.linear", d, (contextPreOnly ? 2 : 6) * d)
        let attn = scope.scope("attn")
        image = try projections(attn, ["to_q", "to_k", "to_v"], ["norm_q", "norm_k"])
        text = try projections(attn, ["add_q_proj", "add_k_proj", "add_v_proj"], ["norm_added_q", "norm_added_k"])
        toOut = try linear(attn, "to_out.0", d, d)
        toAddOut = contextPreOnly ? nil : try linear(attn, "to_add_out", d, d)
        if dualAttention {
            let second = scope.scope("attn2")
            attn2 = try projections(second, ["to_q", "to_k", "to_v"], ["norm_q", "norm_k"])
            attn2Out = try linear(second, "to_out.0", d, d)
        } else {
            (attn2, attn2Out) = (nil, nil)
        }
        ff1 = try linear(scope, "ff.net.0.proj", d, 4 * d)
        ff2 = try linear(scope, "ff.net.2", 4 * d, d)
        ffContext1 = contextPreOnly ? nil : try linear(scope, "ff_context.net.0.proj", d, 4 * d)
        ffContext2 = contextPreOnly ? nil : try linear(scope, "ff_context.net.2", 4 * d, d)
    }

    /// Everything the backward reads, [B, N, D] image / [B, T, D] text unless noted.
    struct Activations {
        var x: Tensor, context: Tensor, siluTemb: Tensor
        var m: [Tensor] = [], c: [Tensor] = []  // modulation chunks, each [B, D]
        var imageQKV: Projected? = nil, textQKV: Projected? = nil
        var query = Tensor(zeros: [0]), key = Tensor(zeros: [0]), value = Tensor(zeros: [0])  // [B, N+T, D]
        var attention = Tensor(zeros: [0]), logsumexp: [Float] = []  // [B, N+T, D], [B, H, N+T]
        var imageAttention = Tensor(zeros: [0]), textAttention = Tensor(zeros: [0]), imageOut = Tensor(zeros: [0])
        var secondQKV: Projected? = nil, second = Tensor(zeros: [0]), secondLogsumexp: [Float] = [], secondOut = Tensor(zeros: [0])
        var afterAttention = Tensor(zeros: [0])  // x after the attention(s), the MLP's residual input
        var mlpIn = Tensor(zeros: [0]), mlpHidden = Tensor(zeros: [0]), mlpGelu = Tensor(zeros: [0]), mlpOut = Tensor(zeros: [0])
        var textOut = Tensor(zeros: [0]), contextAfterAttention = Tensor(zeros: [0])
        var contextMlpIn = Tensor(zeros: [0]), contextHidden = Tensor(zeros: [0]), contextGelu = Tensor(zeros: [0]),
            contextMlpOut = Tensor(zeros: [0])
    }

    /// x [B, N, D], context [B, T, D], siluTemb [B, D] → new image tokens, new text tokens (nil in the last block),
    /// and the activations.
    func forward(_ x: Tensor, context: Tensor, siluTemb: Tensor, _ compute: Compute) -> (Tensor, Tensor?, Activations) {
        var a = Activations(x: x, context: context, siluTemb: siluTemb)
        let m = norm1.forward(siluTemb, compute).chunked(attn2 == nil ? 6 : 9, axis: -1)  // 6 or 9 × [B, D]
        let c = norm1Context.forward(siluTemb, compute).chunked(contextPreOnly ? 2 : 6, axis: -1)  // 2 or 6 × [B, D]
        (a.m, a.c) = (m, c)
        let xHat = compute.normModulate(x, shift: m[0], scale: m[1], eps: 1e-6)  // [B, N, D]
        let cHat = contextPreOnly ? compute.normModulate(context, shift: c[1], scale: c[0], eps: 1e-6)  // (scale, shift)
                                  : compute.normModulate(context, shift: c[0], scale: c[1], eps: 1e-6)  // [B, T, D]
        let (n, t) = (x.dim(1), context.dim(1))
        let qi = project(image, xHat, compute), qt = project(text, cHat, compute)
        (a.imageQKV, a.textQKV) = (qi, qt)
        a.query = Tensor.concat([qi.q, qt.q], axis: 1)  // [B, N+T, D]
        a.key = Tensor.concat([qi.k, qt.k], axis: 1)
        a.value = Tensor.concat([qi.v, qt.v], axis: 1)
        (a.attention, a.logsumexp) = compute.attentionForward(query: a.query, key: a.key, value: a.value, heads: heads, operands: operands)
        let parts = a.attention.split([n, t], axis: 1)
        (a.imageAttention, a.textAttention) = (parts[0], parts[1])
        a.imageOut = toOut.forward(parts[0], compute)
        var out = compute.gatedAdd(x, a.imageOut, gate: m[2])  // [B, N, D]
        if let attn2, let attn2Out {
            let p = project(attn2, compute.normModulate(x, shift: m[6], scale: m[7], eps: 1e-6), compute)
            a.secondQKV = p
            (a.second, a.secondLogsumexp) = compute.attentionForward(query: p.q, key: p.k, value: p.v, heads: heads, operands: operands)
            a.secondOut = attn2Out.forward(a.second, compute)
            out = compute.gatedAdd(out, a.secondOut, gate: m[8])
        }
        a.afterAttention = out
        a.mlpIn = compute.normModulate(out, shift: m[3], scale: m[4], eps: 1e-6)
        a.mlpHidden = ff1.forward(a.mlpIn, compute)  // [B, N, 4D]
        a.mlpGelu = compute.gelu(a.mlpHidden, approximation: .tanh)
        a.mlpOut = ff2.forward(a.mlpGelu, compute)
        out = compute.gatedAdd(out, a.mlpOut, gate: m[5])
        guard !contextPreOnly, let toAddOut, let ffContext1, let ffContext2 else { return (out, nil, a) }
        a.textOut = toAddOut.forward(parts[1], compute)
        var ctx = compute.gatedAdd(context, a.textOut, gate: c[2])  // [B, T, D]
        a.contextAfterAttention = ctx
        a.contextMlpIn = compute.normModulate(ctx, shift: c[3], scale: c[4], eps: 1e-6)
        a.contextHidden = ffContext1.forward(a.contextMlpIn, compute)  // [B, T, 4D]
        a.contextGelu = compute.gelu(a.contextHidden, approximation: .tanh)
        a.contextMlpOut = ffContext2.forward(a.contextGelu, compute)
        ctx = compute.gatedAdd(ctx, a.contextMlpOut, gate: c[5])
        return (out, ctx, a)
    }

    /// dL/d(new image tokens), dL/d(new text tokens) (nil in the last block) → dL/dx, dL/dcontext, dL/dsiluTemb;
    /// the LoRA pairs' gradients are added to along the way.
    func backward(_ a: Activations, image dOut: Tensor, text dContextOut: Tensor?, _ compute: Compute) -> (x: Tensor, context: Tensor, siluTemb: Tensor) {
        let (n, t) = (a.x.dim(1), a.context.dim(1))
        var dm = a.m.map { Tensor(zeros: $0.shape) }, dc = a.c.map { Tensor(zeros: $0.shape) }  // each [B, D]
        // out = afterAttention + m5·ff2(gelu(ff1(normModulate(afterAttention, m3, m4)))).
        let mlp = OpGradients.gatedAdd(dOut, y: a.mlpOut, gate: a.m[5], threads: compute.threads)
        dm[5] = mlp.gate
        let dHidden = OpGradients.geluTanh(a.mlpHidden, ff2.backward(mlp.y, input: a.mlpGelu, compute)!, threads: compute.threads)
        let dMlpIn = ff1.backward(dHidden, input: a.mlpIn, compute)!
        let nm = OpGradients.normModulate(a.afterAttention, dMlpIn, scale: a.m[4], eps: 1e-6, threads: compute.threads)
        (dm[3], dm[4]) = (nm.shift, nm.scale)
        let dAfterAttention = sum(dOut, nm.x)
        var dx = dAfterAttention
        if let attn2, let attn2Out, let p = a.secondQKV {
            let gated = OpGradients.gatedAdd(dAfterAttention, y: a.secondOut, gate: a.m[8], threads: compute.threads)
            dm[8] = gated.gate
            let dSecond = attn2Out.backward(gated.y, input: a.second, compute)!
            let g = compute.attentionBackward(query: p.q, key: p.k, value: p.v, output: a.second, logsumexp: a.secondLogsumexp,
                                              gradient: dSecond, heads: heads, operands: operands)
            let dInput = projectBackward(attn2, p, dq: g.q, dk: g.k, dv: g.v, compute)
            let second = OpGradients.normModulate(a.x, dInput, scale: a.m[7], eps: 1e-6, threads: compute.threads)
            (dm[6], dm[7]) = (second.shift, second.scale)
            dx = sum(dx, second.x)
        }
        let gatedImage = OpGradients.gatedAdd(dAfterAttention, y: a.imageOut, gate: a.m[2], threads: compute.threads)
        dm[2] = gatedImage.gate
        let dImageAttention = toOut.backward(gatedImage.y, input: a.imageAttention, compute)!
        var dContext: Tensor
        let dTextAttention: Tensor
        if let dContextOut, let toAddOut, let ffContext1, let ffContext2 {
            let contextMlp = OpGradients.gatedAdd(dContextOut, y: a.contextMlpOut, gate: a.c[5], threads: compute.threads)
            dc[5] = contextMlp.gate
            let dGelu = ffContext2.backward(contextMlp.y, input: a.contextGelu, compute)!
            let dHidden = OpGradients.geluTanh(a.contextHidden, dGelu, threads: compute.threads)
            let dIn = ffContext1.backward(dHidden, input: a.contextMlpIn, compute)!
            let cm = OpGradients.normModulate(a.contextAfterAttention, dIn, scale: a.c[4], eps: 1e-6, threads: compute.threads)
            (dc[3], dc[4]) = (cm.shift, cm.scale)
            let dAfter = sum(dContextOut, cm.x)
            let gatedText = OpGradients.gatedAdd(dAfter, y: a.textOut, gate: a.c[2], threads: compute.threads)
            dc[2] = gatedText.gate
            dTextAttention = toAddOut.backward(gatedText.y, input: a.textAttention, compute)!
            dContext = dAfter
        } else {
            dTextAttention = Tensor(zeros: a.textAttention.shape)
            dContext = Tensor(zeros: a.context.shape)
        }
        let g = compute.attentionBackward(query: a.query, key: a.key, value: a.value, output: a.attention, logsumexp: a.logsumexp,
                                          gradient: Tensor.concat([dImageAttention, dTextAttention], axis: 1), heads: heads,
                                          operands: operands)
        let (dq, dk, dv) = (g.q.split([n, t], axis: 1), g.k.split([n, t], axis: 1), g.v.split([n, t], axis: 1))  // [B, N | T, D]
        let dXHat = projectBackward(image, a.imageQKV!, dq: dq[0], dk: dk[0], dv: dv[0], compute)
        let dCHat = projectBackward(text, a.textQKV!, dq: dq[1], dk: dk[1], dv: dv[1], compute)
        let first = OpGradients.normModulate(a.x, dXHat, scale: a.m[1], eps: 1e-6, threads: compute.threads)
        (dm[0], dm[1]) = (first.shift, first.scale)
        dx = sum(dx, first.x)
        if contextPreOnly {
            let cn = OpGradients.normModulate(a.context, dCHat, scale: a.c[0], eps: 1e-6, threads: compute.threads)
            (dc[1], dc[0]) = (cn.shift, cn.scale)
            dContext = sum(dContext, cn.x)
        } else {
            let cn = OpGradients.normModulate(a.context, dCHat, scale: a.c[1], eps: 1e-6, threads: compute.threads)
            (dc[0], dc[1]) = (cn.shift, cn.scale)
            dContext = sum(dContext, cn.x)
        }
        let dTemb = sum(norm1.backward(Tensor.concat(dm, axis: 1), input: a.siluTemb, compute)!,
                        norm1Context.backward(Tensor.concat(dc, axis: 1), input: a.siluTemb, compute)!)
        return (dx, dContext, dTemb)
    }

    /// q, k, v [B, L, D] of h; with qk-norm, q and k RMS-normalized per head over head_dim (eps 1e-6).
    private func project(_ p: Projections, _ h: Tensor, _ compute: Compute) -> Projected {
        let (rawQ, rawK, v) = (p.q.forward(h, compute), p.k.forward(h, compute), p.v.forward(h, compute))
        guard let normQ = p.normQ, let normK = p.normK else { return Projected(input: h, rawQ: rawQ, rawK: rawK, q: rawQ, k: rawK, v: v) }
        let headShape = [rawQ.dim(0), rawQ.dim(1), heads, rawQ.dim(2) / heads]
        let q = compute.rmsNorm(rawQ.reshaped(headShape), weight: normQ, eps: 1e-6).reshaped(rawQ.shape)
        let k = compute.rmsNorm(rawK.reshaped(headShape), weight: normK, eps: 1e-6).reshaped(rawK.shape)
        return Projected(input: h, rawQ: rawQ, rawK: rawK, q: q, k: k, v: v)
    }

    /// dL/dq, dk, dv (after the qk-norm) → dL/dh.
    private func projectBackward(_ p: Projections, _ f: Projected, dq: Tensor, dk: Tensor, dv: Tensor, _ compute: Compute) -> Tensor {
        var (dRawQ, dRawK) = (dq, dk)
        if let normQ = p.normQ, let normK = p.normK {
            let headShape = [dq.dim(0), dq.dim(1), heads, dq.dim(2) / heads]
            dRawQ = OpGradients.rmsNorm(f.rawQ.reshaped(headShape), dq.reshaped(headShape), weight: normQ, eps: 1e-6,
                                        threads: compute.threads).reshaped(dq.shape)  // [B, L, H·d]
            dRawK = OpGradients.rmsNorm(f.rawK.reshaped(headShape), dk.reshaped(headShape), weight: normK, eps: 1e-6,
                                        threads: compute.threads).reshaped(dk.shape)
        }
        return sum(sum(p.q.backward(dRawQ, input: f.input, compute)!, p.k.backward(dRawK, input: f.input, compute)!),
                   p.v.backward(dv, input: f.input, compute)!)
    }
}

/// a + b, same shapes.
func sum(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "sum: \(a.shape) and \(b.shape)")
    var out = a
    accumulate(&out.data, b.data)
    return out
}
