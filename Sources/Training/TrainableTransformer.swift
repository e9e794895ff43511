import SafeTensors
import SD3
import Tensors

/// diffusers `SD3Transformer2DModel` (see SD3's SD3Transformer2DModel) with a frozen base and trained LoRA pairs on
/// any of its linear layers (and the patch-embedding conv): a forward that records a tape and the backward that turns
/// dL/d(output) into the pairs' gradients. With gradient checkpointing the tape keeps only each block's inputs and
/// the backward recomputes the block's activations; without, it keeps every block's activations.
public struct TrainableSD3Transformer {
    public let config: SD3TransformerConfig
    public let loras: LoraParameters
    let patch: AdaptedLinear  // pos_embed.proj, the kernel flattened to [D, C·p·p]
    let table: Tensor  // [M², D]
    let timeLinear1: AdaptedLinear, timeLinear2: AdaptedLinear, textLinear1: AdaptedLinear, textLinear2: AdaptedLinear
    let contextEmbedder: AdaptedLinear
    let blocks: [TrainingBlock]
    let normOut: AdaptedLinear  // → (scale, shift)
    let projOut: AdaptedLinear

    /// Throws when a LoRA module names no layer of this config or has another shape. `products`: the operands of a bf16
    /// base's products (linears and attention). fp32 (the default) widens the bf16 weights for each product: exact, and
    /// on CPUs whose bf16 dot products run at half the fp32 FMA rate (the Emerald Rapids Xeon of docs/performance.md:
    /// oneDNN 83 against 155 GFLOP/s per core) twice as fast; bf16 rounds the activations as torch's autocast does.
    public init(config: SD3TransformerConfig, weights: any WeightProvider, precision: Precision = .fp32, products: OperandType = .fp32,
                loras: LoraParameters) throws {
        let (d, p, c) = (config.width, config.patchSize, config.inChannels)
        guard config.captionProjectionDim == d else {
            throw ModelError.unsupported(path: weights.source, reason: "caption_projection_dim \(config.captionProjectionDim) differs from heads × head_dim = \(d)")
        }
        guard config.qkNorm == nil || config.qkNorm == "rms_norm" else {
            throw ModelError.unsupported(path: weights.source, reason: "qk_norm '\(config.qkNorm!)' (expected rms_norm or none)")
        }
        self.config = config
        self.loras = loras
        var used = Set<String>()
        let root = weights.scope("")
        func linear(_ s: WeightScope, _ name: String, _ inWidth: Int, _ outWidth: Int) throws -> AdaptedLinear {
            try AdaptedLinear(s, name, in: inWidth, out: outWidth, precision: precision, products: products, loras: loras, used: &used)
        }
        let embed = weights.scope("pos_embed")
        patch = try AdaptedLinear(name: "pos_embed.proj",
                                  weight: try embed.tensor("proj.weight", shape: [d, c, p, p]).reshaped([d, c * p * p]),
                                  bias: try embed.tensor("proj.bias", shape: [d]), precision: precision, products: products, loras: loras,
                                  used: &used)
        let m = config.posEmbedMaxSize
        table = try embed.tensor("pos_embed", shape: [1, m * m, d]).reshaped([m * m, d])
        let time = weights.scope("time_text_embed")
        timeLinear1 = try linear(time, "timestep_embedder.linear_1", 256, d)
        timeLinear2 = try linear(time, "timestep_embedder.linear_2", d, d)
        textLinear1 = try linear(time, "text_embedder.linear_1", config.pooledProjectionDim, d)
        textLinear2 = try linear(time, "text_embedder.linear_2", d, d)
        contextEmbedder = try linear(root, "context_embedder", config.jointAttentionDim, d)
        blocks = try (0..<config.numLayers).map { i in
            try TrainingBlock(weights.scope("transformer_blocks.\(i)"), width: d, heads: config.numAttentionHeads,
                              contextPreOnly: i == config.numLayers - 1, dualAttention: config.dualAttentionLayers.contains(i),
                              qkNorm: config.qkNorm != nil, precision: precision, products: products, loras: loras, used: &used)
        }
        normOut = try linear(root, "norm_out.linear", d, 2 * d)
        projOut = try linear(root, "proj_out", d, p * p * config.outChannels)
        try weights.requireAllUsed()
        if let stray = loras.modules.keys.sorted().first(where: { !used.contains($0) }) {
            throw LoraTrainingError.matchesNoLayer(module: stray)
        }
    }

    /// What the backward reads: the embeddings' inputs and activations, each block's inputs (and, without
    /// checkpointing, its activations), and the output layer's inputs.
    public struct Tape {
        let checkpointing: Bool
        let batch: Int, height: Int, width: Int
        let patches: Tensor, text: Tensor  // [B, h·w, C·p·p], [B, T, joint_attention_dim]
        let sinusoid: Tensor, timeHidden: Tensor, pooled: Tensor, textHidden: Tensor  // [B, 256], [B, D], [B, P], [B, D]
        let temb: Tensor, siluTemb: Tensor  // [B, D]
        var blockInputs: [(x: Tensor, context: Tensor)] = []
        var activations: [TrainingBlock.Activations] = []
        var last = Tensor(zeros: [0]), modulation: [Tensor] = [], normed = Tensor(zeros: [0])  // [B, N, D], (scale, shift), [B, N, D]
    }

    /// latents [B, C, H, W], text [B, T, joint_attention_dim], pooled [B, pooled_projection_dim], timesteps [B] →
    /// velocity [B, C_out, H, W] and the tape.
    public func forward(_ latents: Tensor, text: Tensor, pooled: Tensor, timesteps: [Float], checkpointing: Bool,
                        compute: Compute) -> (output: Tensor, tape: Tape) {
        let (batch, height, width) = (latents.dim(0), latents.dim(2), latents.dim(3))
        let p = config.patchSize, (h, w) = (height / p, width / p)
        precondition(latents.rank == 4 && latents.dim(1) == config.inChannels && height % p == 0 && width % p == 0
                     && h <= config.posEmbedMaxSize && w <= config.posEmbedMaxSize,
                     "TrainableSD3Transformer: latents \(latents.shape) do not fit [B, \(config.inChannels), H, W] in \(config.posEmbedMaxSize)² patches")
        precondition(text.shape == [batch, text.dim(1), config.jointAttentionDim] && pooled.shape == [batch, config.pooledProjectionDim]
                     && timesteps.count == batch, "TrainableSD3Transformer: conditioning shapes do not match the batch of \(batch)")
        // Patch embedding: the conv with kernel = stride = p is a product on non-overlapping patches.
        let patches = latents.reshaped([batch, config.inChannels, h, p, w, p]).permuted([0, 2, 4, 1, 3, 5])
            .reshaped([batch, h * w, config.inChannels * p * p])  // each patch in the kernel's (c, kh, kw) order
        var x = compute.add(patch.forward(patches, compute), positions(batch: batch, h: h, w: w))  // [B, N, D]
        let sinusoid = timestepSinusoid(timesteps)
        let timeHidden = timeLinear1.forward(sinusoid, compute), textHidden = textLinear1.forward(pooled, compute)
        let temb = compute.add(timeLinear2.forward(compute.silu(timeHidden), compute), textLinear2.forward(compute.silu(textHidden), compute))
        let siluTemb = compute.silu(temb)
        var tape = Tape(checkpointing: checkpointing, batch: batch, height: height, width: width, patches: patches, text: text,
                        sinusoid: sinusoid, timeHidden: timeHidden, pooled: pooled, textHidden: textHidden, temb: temb, siluTemb: siluTemb)
        var context = contextEmbedder.forward(text, compute)  // [B, T, D]
        for block in blocks {
            tape.blockInputs.append((x, context))
            let (image, newText, activations) = block.forward(x, context: context, siluTemb: siluTemb, compute)
            if !checkpointing { tape.activations.append(activations) }
            x = image
            if let newText { context = newText }
        }
        tape.last = x
        tape.modulation = normOut.forward(siluTemb, compute).chunked(2, axis: -1)
        tape.normed = compute.normModulate(x, shift: tape.modulation[1], scale: tape.modulation[0], eps: 1e-6)
        let y = projOut.forward(tape.normed, compute)  // [B, N, p²·C]
        // Unpatchify: out[b, c, p·row + py, p·col + px] = y[b, row·w + col, (py·p + px)·C + c].
        let channels = config.outChannels
        return (y.reshaped([batch, h, w, p, p, channels]).permuted([0, 5, 1, 3, 2, 4]).reshaped([batch, channels, height, width]), tape)
    }

    /// Adds dL/dA and dL/dB of every LoRA pair for dL/d(output) [B, C_out, H, W] (the forward's output shape).
    public func backward(_ tape: Tape, gradient dOut: Tensor, compute: Compute) {
        let p = config.patchSize, (h, w) = (tape.height / p, tape.width / p), channels = config.outChannels
        precondition(dOut.shape == [tape.batch, channels, tape.height, tape.width], "backward: gradient \(dOut.shape) is not the output's shape")
        // The unpatchify's inverse: [B, C, h, py, w, px] → [B, h, w, py, px, C].
        let dy = dOut.reshaped([tape.batch, channels, h, p, w, p]).permuted([0, 2, 4, 3, 5, 1]).reshaped([tape.batch, h * w, p * p * channels])
        let dNormed = projOut.backward(dy, input: tape.normed, compute)!
        let out = OpGradients.normModulate(tape.last, dNormed, scale: tape.modulation[0], eps: 1e-6, threads: compute.threads)
        var dSiluTemb = normOut.backward(Tensor.concat([out.scale, out.shift], axis: 1), input: tape.siluTemb, compute)!
        var dx = out.x
        var dContext: Tensor? = nil  // the last block's text output is unused
        for (i, block) in blocks.enumerated().reversed() {
            let inputs = tape.blockInputs[i]
            let activations = tape.checkpointing ? block.forward(inputs.x, context: inputs.context, siluTemb: tape.siluTemb, compute).2
                                                 : tape.activations[i]
            let g = block.backward(activations, image: dx, text: dContext, compute)
            (dx, dContext) = (g.x, g.context)
            dSiluTemb = sum(dSiluTemb, g.siluTemb)
        }
        _ = contextEmbedder.backward(dContext!, input: tape.text, compute, inputGradient: false)
        let dTemb = OpGradients.silu(tape.temb, dSiluTemb, threads: compute.threads)
        let dTime = timeLinear2.backward(dTemb, input: compute.silu(tape.timeHidden), compute)!
        _ = timeLinear1.backward(OpGradients.silu(tape.timeHidden, dTime, threads: compute.threads), input: tape.sinusoid, compute, inputGradient: false)
        let dText = textLinear2.backward(dTemb, input: compute.silu(tape.textHidden), compute)!
        _ = textLinear1.backward(OpGradients.silu(tape.textHidden, dText, threads: compute.threads), input: tape.pooled, compute, inputGradient: false)
        _ = patch.backward(dx, input: tape.patches, compute, inputGradient: false)  // the position table is frozen: dx passes
    }

    /// The centre crop of the position table for h × w patches, repeated over the batch: [B, h·w, D].
    func positions(batch: Int, h: Int, w: Int) -> Tensor {
        let (m, d) = (config.posEmbedMaxSize, config.width)
        let top = (m - h) / 2, left = (m - w) / 2
        var crop = [Float]()
        crop.reserveCapacity(batch * h * w * d)
        for _ in 0..<batch {
            for row in 0..<h {
                let start = ((top + row) * m + left) * d
                crop.append(contentsOf: table.data[start..<start + w * d])
            }
        }
        return Tensor(shape: [batch, h * w, d], data: crop)
    }
}
