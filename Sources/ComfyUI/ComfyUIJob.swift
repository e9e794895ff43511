import SD3

/// One image to make on a ComfyUI server: our generation parameters, and the server's file names for the model and
/// the parts it lacks (as `sd3 generate --model/--clip-l/--clip-g/--t5/--vae` name them).
public struct ComfyUIJob: Sendable, Equatable {
    public var parameters: GenerationParameters
    /// A file in the server's `checkpoints` (CheckpointLoaderSimple) or `diffusion_models` (UNETLoader) folder.
    public var model: String
    public var modelFolder: ModelFolder = .checkpoints
    /// Files in its `text_encoders` (or `clip`) folder; nil: the checkpoint's own, or none at all.
    public var clipL: String?
    public var clipG: String?
    public var t5: String?
    /// A file in its `vae` folder (or "taesd3" from `vae_approx`); nil: the checkpoint's own.
    public var vae: String?
    /// Files in its `loras` folder, applied to the diffusion model (LoraLoaderModelOnly) in order.
    public var loras: [RemoteLora] = []
    /// The name the uploaded init image got on the server (img2img; set by the backend after `/upload/image`).
    public var uploadedImage: String?

    public enum ModelFolder: String, Sendable, Equatable { case checkpoints, diffusionModels = "diffusion_models" }

    public struct RemoteLora: Sendable, Equatable {
        public var name: String
        public var strength: Double
        public init(name: String, strength: Double) { (self.name, self.strength) = (name, strength) }
    }

    public init(parameters: GenerationParameters, model: String) {
        self.parameters = parameters
        self.model = model
    }

    public var encoders: [String] { [clipL, clipG, t5].compactMap { $0 } }
}
