import Tensors

/// The text conditioning of one generation: what `encode_prompt` returns.
public struct Conditioning: Sendable {
    /// prompt_embeds [B, 77 + L, joint_attention_dim] and pooled_prompt_embeds [B, 2048].
    public var promptEmbeds: Tensor
    public var pooled: Tensor
    /// The negative prompt's, present when guidance is on.
    public var negativePromptEmbeds: Tensor?
    public var negativePooled: Tensor?
    /// Words dropped because a prompt was longer than an encoder takes.
    public var warnings: [String] = []

    public init(promptEmbeds: Tensor, pooled: Tensor, negativePromptEmbeds: Tensor? = nil, negativePooled: Tensor? = nil) {
        self.promptEmbeds = promptEmbeds
        self.pooled = pooled
        self.negativePromptEmbeds = negativePromptEmbeds
        self.negativePooled = negativePooled
    }
}

/// One finished denoising step, for progress and previews.
public struct StepProgress: Sendable {
    public let index: Int  // 0-based among the steps actually run
    public let total: Int
    public let timestep: Float
    public let sigma: Float
    /// Latents after this step, in the transformer's space [B, 16, h, w].
    public let latents: Tensor
    /// The step's prediction of the finished latents, x0 = x_t − σ_t·v from the latents this step started from and
    /// the guided velocity (what ComfyUI previews): the picture the run is heading for, not the noisy latents.
    public let denoised: Tensor
}

/// The denoising loop of `StableDiffusion3Pipeline.__call__` / `StableDiffusion3Img2ImgPipeline.__call__`
/// (diffusers 0.42.1): classifier-free guidance on the batch [uncond, cond], optional skip-layer guidance,
/// the flow-matching Euler step or the flash scheduler's x0-and-re-noise step. The caller owns the loop's reporting
/// through `onStep`.
public struct Denoiser: Sendable {
    public let transformer: SD3Transformer2DModel
    public let compute: Compute
    /// Run-time LoRA pairs passed into every transformer call (`ActiveLoras[.transformer]`, checked by the caller).
    public let loras: LayerLoras

    public init(transformer: SD3Transformer2DModel, compute: Compute, loras: LayerLoras = .none) {
        (self.transformer, self.compute, self.loras) = (transformer, compute, loras)
    }

    /// Runs steps `beginIndex..<N` of `scheduler` from `latents` [B, C, h, w]; returns the final latents.
    public func run(latents start: Tensor, conditioning c: Conditioning, scheduler schedule: Sampler,
                    beginIndex: Int, guidanceScale: Double, skipLayerGuidance: SkipLayerGuidance?,
                    isCancelled: () -> Bool, onStep: (StepProgress) throws -> Void) throws -> Tensor {
        var scheduler = schedule
        let batch = start.dim(0)
        let guided = guidanceScale > 1
        let steps = scheduler.timesteps.count
        var text = c.promptEmbeds, pooled = c.pooled
        if guided {
            guard let negative = c.negativePromptEmbeds, let negativePooled = c.negativePooled else {
                preconditionFailure("Denoiser: guidance needs the negative prompt's embeddings")
            }
            text = Tensor.concat([negative, c.promptEmbeds], axis: 0)
            pooled = Tensor.concat([negativePooled, c.pooled], axis: 0)
        }
        let g = Float(guidanceScale)
        var latents = start
        func step(_ i: Int) throws {
            if isCancelled() { throw CancellationError() }
            let t = scheduler.timesteps[i]
            let input = guided ? Tensor.concat([latents, latents], axis: 0) : latents
            let prediction = try transformer(input, text: text, pooled: pooled, timesteps: [Float](repeating: t, count: input.dim(0)),
                                             compute: compute, loras: loras, isCancelled: isCancelled)
            var velocity = prediction
            if guided {
                let halves = prediction.chunked(2, axis: 0)
                let (uncond, cond) = (halves[0], halves[1])
                // uncond + g·(cond − uncond), each op rounded to float32 as torch does.
                velocity = Tensor(shape: uncond.shape, data: zip(uncond.data, cond.data).map { u, v in
                    let difference = v - u
                    let scaled = g * difference
                    return u + scaled
                })
                if let slg = skipLayerGuidance, slg.isActive(step: i, of: steps) {
                    let skipped = try transformer(latents, text: c.promptEmbeds, pooled: c.pooled,
                                                  timesteps: [Float](repeating: t, count: batch), skipLayers: Set(slg.layers),
                                                  compute: compute, loras: loras, isCancelled: isCancelled)
                    let s = Float(slg.scale)
                    velocity = Tensor(shape: velocity.shape, data: (0..<velocity.count).map { k in
                        let difference = cond.data[k] - skipped.data[k]
                        let scaled = difference * s
                        return velocity.data[k] + scaled
                    })
                }
            }
            let denoised = Self.predictedOriginal(sample: latents, velocity: velocity, sigma: scheduler.sigmas[i])
            latents = Tensor(shape: latents.shape, data: scheduler.step(velocity.data, sample: latents.data, index: i, shape: latents.shape))
            // NaN/Inf weights or settings poison every later step; stop here, naming the step, instead of decoding garbage.
            guard latents.data.allSatisfy(\.isFinite) else { throw GenerationError.nonFinite(step: i - beginIndex + 1) }
            try onStep(StepProgress(index: i - beginIndex, total: steps - beginIndex, timestep: t,
                                    sigma: scheduler.sigmas[i + 1], latents: latents, denoised: denoised))
        }
        // The first step makes every tensor size once (and packs the weights); from the second on, each step's tensors
        // reuse the memory the previous step freed, so no step after the first touches a fresh page.
        let patch = transformer.config.patchSize
        transformer.prepareWeights(rows: batch * (guided ? 2 : 1) * (start.dim(2) / patch) * (start.dim(3) / patch), compute: compute)
        if beginIndex < steps { try step(beginIndex) }
        try FreedMemoryReuse.reusingFreedMemory {
            for i in beginIndex + 1..<max(beginIndex + 1, steps) { try step(i) }
        }
        return latents
    }

    /// Flow matching's x0 prediction: x_t = (1 − σ)·x0 + σ·ε and v = ε − x0 give x0 = x_t − σ·v (sample and velocity
    /// [B, C, h, w], σ the step's own sigma), in float32 as torch rounds `latents - sigma * v`.
    public static func predictedOriginal(sample: Tensor, velocity: Tensor, sigma: Float) -> Tensor {
        Tensor(shape: sample.shape, data: zip(sample.data, velocity.data).map { x, v in
            let scaled = sigma * v
            return x - scaled
        })
    }
}
