/// Matching a job's file names against what the server lists, before anything is queued.
extension ComfyUIServer.Files {
    /// The job with its model's folder found and every name checked; a name the server lacks is an error that lists
    /// what it has.
    func resolve(_ job: ComfyUIJob, server: String) throws(RemoteError) -> ComfyUIJob {
        var job = job
        if checkpoints.contains(job.model) {
            job.modelFolder = .checkpoints
        } else if diffusionModels.contains(job.model) {
            job.modelFolder = .diffusionModels
        } else {
            throw RemoteError("\(server) has no model '\(job.model.oneLineShown)': its checkpoints: \(Self.list(checkpoints)); its diffusion_models: \(Self.list(diffusionModels))")
        }
        for (flag, name) in [("--clip-l", job.clipL), ("--clip-g", job.clipG), ("--t5", job.t5)] {
            if let name, !textEncoders.contains(name) {
                throw RemoteError("\(server) has no text encoder '\(name.oneLineShown)' (\(flag)): its text_encoders: \(Self.list(textEncoders))")
            }
        }
        if job.parameters.decoder == .taesd {
            guard vaes.contains("taesd3") else {
                throw RemoteError("\(server) has no TAESD3 for --decoder taesd: put taesd3_encoder and taesd3_decoder .safetensors in its models/vae_approx")
            }
            job.vae = "taesd3"
        }
        if let vae = job.vae, !vaes.contains(vae) {
            throw RemoteError("\(server) has no VAE '\(vae.oneLineShown)': its vae files: \(Self.list(vaes))")
        }
        for lora in job.loras where !loras.contains(lora.name) {
            throw RemoteError("\(server) has no LoRA '\(lora.name.oneLineShown)': its loras: \(Self.list(loras))")
        }
        return job
    }

    /// At most 12 names, then how many more.
    static func list(_ names: [String]) -> String {
        guard !names.isEmpty else { return "none" }
        let shown = names.prefix(12).map(\.oneLineShown).joined(separator: ", ")
        return names.count > 12 ? "\(shown) and \(names.count - 12) more" : shown
    }
}
