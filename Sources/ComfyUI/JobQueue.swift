import Foundation
import ImageIO
import ImageMetadata
import SD3

/// Something that makes images: a ComfyUI server (or the local engine, wrapped by its caller).
public protocol ImageWorker: Sendable {
    /// How the worker is named in status lines and errors ("127.0.0.1:8188", "local").
    var name: String { get }
    func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error>
}

extension ComfyUIBackend: ImageWorker {
    public var name: String { server.address.name }
}

/// Spreads jobs over workers as SwarmUI spreads a batch over its backends: each worker takes the next waiting job when
/// it is free, one at a time. A worker whose job is `Lost` (server gone or restarted) gives the job back to the front
/// of the queue and pauses; after three losses in a row it is retired for the run. So every job is made once and
/// none is lost while a worker lives. Any other failure is that job's result (the same workflow would fail the same way elsewhere).
public struct JobQueue: Sendable {
    public struct Report: Sendable {
        public var job: Int
        public var worker: String
        public var event: GenerationEvent
    }

    public enum Outcome: Sendable {
        case finished(image: RGBImage, metadata: ImageMetadata, worker: String)
        case failed(Error)
    }

    public let workers: [any ImageWorker]
    /// A server restarting mid-job gets its job again after a pause; one that keeps failing is left alone.
    static let lossesBeforeRetiring = 3
    /// Seconds a worker waits after its first loss (twice that after the second).
    let pauseAfterLoss: Double

    public init(workers: [any ImageWorker], pauseAfterLoss: Double = 2) {
        self.workers = workers
        self.pauseAfterLoss = pauseAfterLoss
    }

    /// Runs every job; `report` sees each event with its job index and worker (from the workers' tasks). Cancelling
    /// the calling task cancels every running job.
    /// `lost` sees each job given back (job index, worker, why), so a caller can say where jobs moved.
    public func run(_ jobs: [ComfyUIJob], report: @escaping @Sendable (Report) -> Void,
                    lost: @escaping @Sendable (Int, String, String) -> Void = { _, _, _ in }) async -> [Outcome] {
        let state = QueueState(count: jobs.count)
        await withTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask {
                    var losses = 0
                    while let index = await state.next() {
                        if Task.isCancelled { await state.finish(index, .failed(CancellationError())); continue }
                        do {
                            var finished: Outcome?
                            for try await event in worker.generate(jobs[index]) {
                                report(Report(job: index, worker: worker.name, event: event))
                                if case let .finished(image, metadata, _) = event { finished = .finished(image: image, metadata: metadata, worker: worker.name) }
                            }
                            losses = 0
                            let ended: Outcome = Task.isCancelled ? .failed(CancellationError()) : .failed(RemoteError("\(worker.name) ended the job without an image"))
                            await state.finish(index, finished ?? ended)
                        } catch let failure as ComfyUIBackend.Lost {
                            // Back to the front of the queue for any worker; this one pauses, and after three losses in a
                            // row it is done for this run.
                            await state.giveBack(index, error: failure)
                            losses += 1
                            lost(index, worker.name, failure.reason + (losses >= Self.lossesBeforeRetiring ? " (no more jobs for \(worker.name) in this run)" : ""))
                            if losses >= Self.lossesBeforeRetiring { return }
                            try? await Task.sleep(for: .seconds(pauseAfterLoss * Double(losses)))
                        } catch {
                            await state.finish(index, .failed(error))
                        }
                    }
                }
            }
        }
        return await state.outcomes()
    }
}

/// The waiting jobs and the outcomes, shared by the workers' tasks.
actor QueueState {
    private var waiting: [Int]
    private var running = 0
    private var results: [Int: JobQueue.Outcome] = [:]
    private var lastLoss: [Int: Error] = [:]

    init(count: Int) { waiting = Array(0..<count) }

    /// The next job; while others run (any may come back lost) an idle worker waits rather than leaving, and nil
    /// means there is nothing left to do (or the caller was cancelled).
    func next() async -> Int? {
        while true {
            if !waiting.isEmpty {
                running += 1
                return waiting.removeFirst()
            }
            if running == 0 || Task.isCancelled { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func finish(_ index: Int, _ outcome: JobQueue.Outcome) {
        results[index] = outcome
        running -= 1
    }

    /// Puts a lost job first in line again.
    func giveBack(_ index: Int, error: Error) {
        waiting.insert(index, at: 0)
        lastLoss[index] = error
        running -= 1
    }

    /// Jobs no live worker took end with their last loss.
    func outcomes() -> [JobQueue.Outcome] {
        for index in waiting { results[index] = .failed(lastLoss[index] ?? RemoteError("no worker was left to run it")) }
        waiting = []
        return results.keys.sorted().map { results[$0]! }
    }
}
