import SD3

/// ComfyUI's API-format workflow for a job: nodes keyed "1", "2", … in a fixed order, so the same job is the same JSON.
/// Mapping (ComfyUI 0.3.75 nodes.py and comfy_extras/nodes_sd3.py, nodes_model_advanced.py):
/// - model: CheckpointLoaderSimple (MODEL 0, CLIP 1, VAE 2) or UNETLoader; encoders: CLIPLoader(type sd3) for one,
///   DualCLIPLoader(type sd3) for two, TripleCLIPLoader for three; VAELoader for a separate VAE (or "taesd3").
/// - LoraLoaderModelOnly per LoRA, then ModelSamplingSD3(shift) when a shift is set, SkipLayerGuidanceSD3 for SLG.
/// - CLIPTextEncode for the prompt and the negative prompt; EmptySD3LatentImage (txt2img) or LoadImage + VAEEncode.
/// - KSampler euler + normal (= diffusers' FlowMatchEulerDiscreteScheduler with a static shift) and our seed (ComfyUI
///   draws `torch.randn` from `torch.manual_seed(seed)` on the CPU, as diffusers does). img2img uses KSamplerAdvanced
///   from step N−⌊N·strength⌋ of N, diffusers' `get_timesteps`, rather than KSampler's denoise (which stretches the
///   schedule to N/denoise steps and runs N of them).
/// - guidance ≤ 1 is cfg 1, which ComfyUI (like diffusers) runs without the unconditional pass.
/// - VAEDecode → SaveImageWebsocket (the PNG over the socket) and PreviewImage (kept in the server's temp folder, so
///   `/history` still has the image when the socket dropped).
public struct ComfyUIWorkflow: Sendable {
    public let nodes: [(id: String, classType: String, inputs: [(String, JSON)])]
    /// The ids of the two output nodes.
    public let socketOutput: String
    public let historyOutput: String

    /// Why a job cannot run on ComfyUI.
    public static func unsupported(_ p: GenerationParameters) -> String? {
        if p.scheduler != .euler { return "the \(p.scheduler.rawValue) scheduler runs on the local engine only (ComfyUI has no Flash-SD3 sampler)" }
        if p.variation != nil { return "variation seeds run on the local engine only (ComfyUI's KSampler has no variation noise)" }
        return nil
    }

    public init(_ job: ComfyUIJob) throws(RemoteError) {
        let p = job.parameters
        if let reason = Self.unsupported(p) { throw RemoteError(reason) }
        var nodes: [(id: String, classType: String, inputs: [(String, JSON)])] = []
        func add(_ classType: String, _ inputs: [(String, JSON)]) -> String {
            let id = String(nodes.count + 1)
            nodes.append((id, classType, inputs))
            return id
        }
        func link(_ id: String, _ output: Int) -> JSON { .array([.string(id), .integer(Int64(output))]) }

        var model: JSON, clip: JSON?, vae: JSON?
        switch job.modelFolder {
        case .checkpoints:
            let loader = add("CheckpointLoaderSimple", [("ckpt_name", .string(job.model))])
            (model, clip, vae) = (link(loader, 0), link(loader, 1), link(loader, 2))
        case .diffusionModels:
            model = link(add("UNETLoader", [("unet_name", .string(job.model)), ("weight_dtype", "default")]), 0)
        }
        let encoders = job.encoders
        switch encoders.count {
        case 1: clip = link(add("CLIPLoader", [("clip_name", .string(encoders[0])), ("type", "sd3")]), 0)
        case 2: clip = link(add("DualCLIPLoader", [("clip_name1", .string(encoders[0])), ("clip_name2", .string(encoders[1])), ("type", "sd3")]), 0)
        case 3: clip = link(add("TripleCLIPLoader", [("clip_name1", .string(encoders[0])), ("clip_name2", .string(encoders[1])), ("clip_name3", .string(encoders[2]))]), 0)
        default: break
        }
        if let name = job.vae { vae = link(add("VAELoader", [("vae_name", .string(name))]), 0) }
        guard let clip else {
            throw RemoteError("\(job.model) is a diffusion model without text encoders: name at least one with --clip-l, --clip-g or --t5")
        }
        guard let vae else { throw RemoteError("\(job.model) is a diffusion model without a VAE: name one with --vae") }
        for lora in job.loras {
            model = link(add("LoraLoaderModelOnly", [("model", model), ("lora_name", .string(lora.name)), ("strength_model", .number(lora.strength))]), 0)
        }
        if let shift = p.shift { model = link(add("ModelSamplingSD3", [("model", model), ("shift", .number(shift))]), 0) }
        if let slg = p.skipLayerGuidance {
            model = link(add("SkipLayerGuidanceSD3", [("model", model), ("layers", .string(slg.layers.map(String.init).joined(separator: ", "))),
                                                       ("scale", .number(slg.scale)), ("start_percent", .number(slg.start)),
                                                       ("end_percent", .number(slg.stop))]), 0)
        }
        let positive = link(add("CLIPTextEncode", [("text", .string(p.prompt)), ("clip", clip)]), 0)
        let negative = link(add("CLIPTextEncode", [("text", .string(p.negativePrompt)), ("clip", clip)]), 0)
        let cfg = JSON.number(p.usesGuidance ? p.guidanceScale : 1)
        let sampled: String
        if p.initImage != nil {
            guard let uploaded = job.uploadedImage else { throw RemoteError("img2img needs the init image uploaded first") }
            let image = add("LoadImage", [("image", .string(uploaded))])
            let latent = add("VAEEncode", [("pixels", link(image, 0)), ("vae", vae)])
            let start = p.steps - min(Int(Double(p.steps) * p.strength), p.steps)
            sampled = add("KSamplerAdvanced", [
                ("add_noise", "enable"), ("noise_seed", .unsigned(p.seed)), ("steps", .integer(Int64(p.steps))), ("cfg", cfg),
                ("sampler_name", "euler"), ("scheduler", "normal"), ("positive", positive), ("negative", negative),
                ("latent_image", link(latent, 0)), ("start_at_step", .integer(Int64(start))), ("end_at_step", 10000),
                ("return_with_leftover_noise", "disable"), ("model", model),
            ])
        } else {
            let latent = add("EmptySD3LatentImage", [("width", .integer(Int64(p.width))), ("height", .integer(Int64(p.height))), ("batch_size", 1)])
            sampled = add("KSampler", [
                ("seed", .unsigned(p.seed)), ("steps", .integer(Int64(p.steps))), ("cfg", cfg), ("sampler_name", "euler"),
                ("scheduler", "normal"), ("denoise", .number(1)), ("model", model), ("positive", positive), ("negative", negative),
                ("latent_image", link(latent, 0)),
            ])
        }
        let decoded = add("VAEDecode", [("samples", link(sampled, 0)), ("vae", vae)])
        socketOutput = add("SaveImageWebsocket", [("images", link(decoded, 0))])
        historyOutput = add("PreviewImage", [("images", link(decoded, 0))])
        self.nodes = nodes
    }

    /// The `prompt` object of `POST /prompt`.
    public var json: JSON {
        .object(nodes.map { ($0.id, .object([("inputs", .object($0.inputs)), ("class_type", .string($0.classType))])) })
    }

    /// The node that samples (whose `progress` messages are our steps).
    public var samplerID: String? { nodes.first { $0.classType.hasPrefix("KSampler") }?.id }

    public func classType(of id: String) -> String? { nodes.first { $0.id == id }?.classType }
}
