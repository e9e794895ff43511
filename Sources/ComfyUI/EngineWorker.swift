import SD3

/// The local engine as one of a JobQueue's workers: a job's parameters rendered by `InferenceEngine` from the local
/// model `model` (the servers' file names mean nothing here). Its LoRAs must be files on this machine.
public struct EngineWorker: ImageWorker {
    public let engine: InferenceEngine
    public let model: String
    public let options: LoadOptions
    public var name: String { "local" }

    public init(engine: InferenceEngine, model: String, options: LoadOptions) {
        (self.engine, self.model, self.options) = (engine, model, options)
    }

    public func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error> {
        let (engine, model, options) = (self.engine, self.model, self.options)
        let loras = job.loras.map { LoraChoice(path: $0.name, strength: $0.strength) }
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, Error>.makeStream()
        let task = Task {
            do {
                for try await event in await engine.generate(job.parameters, model: model, options: options, loras: loras) {
                    continuation.yield(event)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
