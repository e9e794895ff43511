import ComfyUI
import SD3
import StudioCore

extension BackendStatus {
    /// Asks the server, with short timeouts (the picker waits for the answer): blocking, off the main actor.
    public static func probe(_ address: ServerAddress) -> BackendStatus {
        var timeouts = Timeouts()
        (timeouts.connect, timeouts.read) = (3, 10)
        let server = ComfyUIServer(address, timeouts: timeouts)
        do {
            let stats = try server.systemStats()
            return .reachable(queue: try server.queueLength(), device: stats.summary)
        } catch {
            return .unreachable(error.description)
        }
    }
}

/// A server's worker with that server's file names put into each job (a grid's jobs are shared by servers whose
/// files may be named differently).
struct BackendWorker: ImageWorker {
    let base: any ImageWorker
    let backend: StudioBackend
    let useT5: Bool
    var name: String { base.name }
    func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error> { base.generate(backend.job(job, useT5: useT5)) }
}

/// The local engine's worker with the LoRAs as files on this machine (a grid's jobs name them as the servers do).
struct LocalDraftWorker: ImageWorker {
    let base: any ImageWorker
    let loras: [LoraChoice]
    var name: String { base.name }
    func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error> {
        var job = job
        job.loras = loras.map { .init(name: $0.path, strength: $0.strength) }
        return base.generate(job)
    }
}
