import Foundation
import ImageIO
import ImageMetadata
import Tensors

/// What a generation reports while it runs (docs/architecture.md, Engine): the caller owns the loop and the UI.
public enum GenerationEvent: Sendable {
    case loading(model: String)
    case loaded(seconds: Double)
    case encodingPrompt
    /// The prompt was encoded (or taken from the cache, `cached`), with any truncation warnings.
    case encodedPrompt(seconds: Double, cached: Bool, warnings: [String])
    /// `preview`: the step's x0 prediction (`StableDiffusion3Pipeline.preview`), through TAESD3 at half the image's side
    /// when the pipeline has one, else the latent→RGB projection at latent size; nil when a server sent none.
    case step(index: Int, total: Int, sigma: Float, elapsed: Double, preview: RGBImage?)
    case decoding
    case finished(image: RGBImage, metadata: ImageMetadata, seconds: Double)
}

/// Owns the loaded model and runs generations on a dedicated thread (not the cooperative pool), streaming
/// events. Prompt embeddings of the last prompt are cached, so tweaking steps, seed or size does not run the
/// text encoders again. Cancelling the consuming task stops the work between transformer blocks.
public actor InferenceEngine {
    /// Written by the engine thread before it finishes a stream, so the next request always sees it.
    private let state = EngineState()

    public init() {}

    public var loadedModel: String? { state.read().pipeline?.path }

    /// How many times this engine has loaded a model (a run that reuses the loaded one adds nothing).
    public var loadCount: Int { state.loads }

    /// Denoising steps the last run finished (a cancelled run stops within one transformer block of its cancel), and
    /// how many it had finished when its consumer left.
    public var lastRunSteps: Int { state.stepsRun }
    var lastRunStepsAtCancel: Int? { state.stepsAtCancel }

    /// Returns once no run is working (the last one may still be stopping after its consumer left).
    public func waitUntilIdle() async {
        let state = self.state
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread {
                state.runLock.lock()
                state.runLock.unlock()
                done.resume()
            }.start()
        }
    }

    /// `loras` apply to this run only: the pipeline is loaded in run-time LoRA mode and the run passes them into the
    /// models as a value (`ActiveLoras`), so changing them (or their strengths) between runs needs no reload, and an
    /// empty list is the base model bit for bit.
    public func generate(_ parameters: GenerationParameters, model: String, options: LoadOptions,
                         loras: [LoraChoice] = []) -> AsyncThrowingStream<GenerationEvent, Error> {
        let options = Self.runTime(options)
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, Error>.makeStream()
        let cancelled = CancellationFlag()
        let state = self.state
        continuation.onTermination = { _ in
            state.stepsAtCancel = state.stepsRun
            cancelled.set()
        }
        let thread = Thread {
            // One run at a time: a run started while the last one is still stopping (its consumer left mid-block)
            // waits for it, then finds the model and prompt cache that run left.
            state.runLock.lock()
            defer { state.runLock.unlock() }
            (state.stepsRun, state.stepsAtCancel) = (0, nil)
            let (loaded, cached) = state.read()
            // By the name given: a repo id's path is its snapshot folder.
            let current = loaded?.source.name == model && loaded?.options == options ? loaded : nil
            // Embeddings from other text encoders (T5 off, int8, another precision or model) are not this pipeline's.
            let cachedHere = current == nil ? nil : cached
            do {
                let loadStart = Date()
                let pipeline: StableDiffusion3Pipeline
                if let current {
                    pipeline = current
                } else {
                    continuation.yield(.loading(model: model))
                    pipeline = try StableDiffusion3Pipeline(path: model, options: options)
                    // Kept before the LoRAs are checked, so a bad LoRA costs this run, not a reload on the next.
                    state.write(pipeline: pipeline, cache: nil)
                    continuation.yield(.loaded(seconds: Date().timeIntervalSince(loadStart)))
                }
                // Files the last run read are reused unless they changed on disk.
                let active = try pipeline.loras(loras, reusing: state.lastLoras)
                state.lastLoras = active
                try Self.run(parameters, pipeline: pipeline, loras: active, cached: cachedHere, cancelled: cancelled, state: state,
                             continuation: continuation) { cache in
                    state.write(pipeline: pipeline, cache: cache)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: cancelled.isSet ? CancellationError() : error)
            }
        }
        thread.name = "sd3-inference"
        thread.stackSize = 8 << 20
        thread.start()
        return stream
    }

    /// The options with run-time LoRAs: the LoRA list is per request, so it is not part of what gets loaded.
    static func runTime(_ options: LoadOptions) -> LoadOptions {
        var options = options
        (options.loras, options.loraMode) = ([], .runTime)
        return options
    }

    /// The generation itself, on the engine's thread. `remember` stores the pipeline and the embeddings before
    /// `finished` is yielded: a caller that starts the next generation on `finished` (seed exploration) finds
    /// the model loaded and the prompt cached.
    private static func run(_ p: GenerationParameters, pipeline: StableDiffusion3Pipeline, loras: ActiveLoras,
                            cached: (key: String, conditioning: Conditioning)?,
                            cancelled: CancellationFlag, state: EngineState, continuation: AsyncThrowingStream<GenerationEvent, Error>.Continuation,
                            remember: ((key: String, conditioning: Conditioning)) -> Void) throws {
        let start = Date()
        var p = p
        // A draft asks for TAESD3; when the studio's was left out (LoadOptions.taesdOptional) the VAE decodes it instead.
        if p.decoder == .taesd && pipeline.taesd == nil && pipeline.options.taesdOptional { p.decoder = .vae }
        try pipeline.validate(p)
        // LoRAs with CLIP pairs change the embeddings, so what of them reaches the text encoders is part of the key.
        let key = "\(p.prompt)\u{0}\(p.negativePrompt)\u{0}\(p.maxSequenceLength)\u{0}\(p.usesGuidance)\u{0}\(loras.textEncoderKey)"
        let conditioning: Conditioning
        if let cached, cached.key == key {
            conditioning = cached.conditioning
            continuation.yield(.encodedPrompt(seconds: 0, cached: true, warnings: conditioning.warnings))
        } else {
            continuation.yield(.encodingPrompt)
            let encodeStart = Date()
            conditioning = try pipeline.encode(p, loras: loras)
            continuation.yield(.encodedPrompt(seconds: Date().timeIntervalSince(encodeStart), cached: false, warnings: conditioning.warnings))
        }
        if cancelled.isSet { throw CancellationError() }
        let (scheduler, latents, begin) = try pipeline.prepare(p)
        let denoiseStart = Date()
        let final = try pipeline.denoiser(loras: loras)
            .run(latents: latents, conditioning: conditioning, scheduler: scheduler, beginIndex: begin, guidanceScale: p.guidanceScale,
                 skipLayerGuidance: p.skipLayerGuidance, isCancelled: { cancelled.isSet }) { step in
                let preview = try pipeline.preview(step)
                state.stepsRun += 1
                continuation.yield(.step(index: step.index, total: step.total, sigma: step.sigma,
                                         elapsed: Date().timeIntervalSince(denoiseStart), preview: preview))
            }
        continuation.yield(.decoding)
        let image = try pipeline.decode(final, with: p.decoder, isCancelled: { cancelled.isSet })[0]
        let seconds = Date().timeIntervalSince(start)
        // The model as given: a repo id stays a repo id (its snapshot folder's name is a commit hash).
        var metadata = ImageMetadata(parameters: p, model: pipeline.source.name,
                                     t5: pipeline.hasT5, shift: p.shift ?? pipeline.schedulerConfig.shift,
                                     precision: pipeline.options.precision.rawValue, seconds: seconds)
        if pipeline.hasT5 && pipeline.options.t5Int8 { metadata.t5Weights = "int8" }
        metadata.record(loras: loras, mode: .runTime)
        remember((key, conditioning))
        continuation.yield(.finished(image: image, metadata: metadata, seconds: seconds))
    }
}

/// The loaded pipeline and the last prompt's embeddings, shared between the actor and its thread.
final class EngineState: @unchecked Sendable {
    private let lock = NSLock()
    /// Held by the engine's thread for a whole run.
    let runLock = NSLock()
    private var steps = 0
    private var atCancel: Int?
    var stepsRun: Int {
        get { lock.withLock { steps } }
        set { lock.withLock { steps = newValue } }
    }
    /// The steps a run had finished when its stream ended (its consumer left or finished); nil before that.
    var stepsAtCancel: Int? {
        get { lock.withLock { atCancel } }
        set { lock.withLock { atCancel = newValue } }
    }
    private var pipeline: StableDiffusion3Pipeline?
    private var cache: (key: String, conditioning: Conditioning)?
    private var loras = ActiveLoras.none
    /// The LoRAs of the last run, whose files the next run reuses where they did not change on disk.
    var lastLoras: ActiveLoras {
        get { lock.withLock { loras } }
        set { lock.withLock { loras = newValue } }
    }
    private var loadCount = 0

    func read() -> (pipeline: StableDiffusion3Pipeline?, cache: (key: String, conditioning: Conditioning)?) {
        lock.withLock { (pipeline, cache) }
    }

    var loads: Int { lock.withLock { loadCount } }

    func write(pipeline: StableDiffusion3Pipeline, cache: (key: String, conditioning: Conditioning)?) {
        lock.withLock {
            if self.pipeline !== pipeline { loadCount += 1 }
            self.pipeline = pipeline
            self.cache = cache
        }
    }
}

/// A flag set from any thread (the stream's termination) and read by the engine thread between blocks.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
