import Foundation
import ImageIO
import ImageMetadata
import SD3
import Testing
@testable import ComfyUI

/// The queue's promises, with workers that follow a script: every job is made exactly once while a worker lives,
/// a lost job goes to another worker, a refused job is that job's error.
@Suite(.timeLimit(.minutes(10))) struct JobQueueTests {
    /// A worker that makes a 1×1 image whose red channel is the seed, loses the jobs whose seeds it is told to (once
    /// each), refuses the seeds it is told to, and logs what it ran.
    final class ScriptedWorker: ImageWorker, @unchecked Sendable {
        let name: String
        let lock = NSLock()
        var loses: Set<UInt64>
        let refuses: Set<UInt64>
        let alwaysLoses: Bool
        var made: [UInt64] = []
        var attempts = 0

        init(_ name: String, loses: Set<UInt64> = [], refuses: Set<UInt64> = [], alwaysLoses: Bool = false) {
            (self.name, self.loses, self.refuses, self.alwaysLoses) = (name, loses, refuses, alwaysLoses)
        }

        func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error> {
            let seed = job.parameters.seed
            return AsyncThrowingStream { continuation in
                Task {
                    let outcome = lock.withLock { () -> Int in
                        attempts += 1
                        if alwaysLoses || loses.remove(seed) != nil { return 0 }
                        if refuses.contains(seed) { return 1 }
                        made.append(seed)
                        return 2
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                    continuation.yield(.step(index: 0, total: 1, sigma: 1, elapsed: 0, preview: nil))
                    switch outcome {
                    case 0: continuation.finish(throwing: ComfyUIBackend.Lost(reason: "\(name) went away"))
                    case 1: continuation.finish(throwing: RemoteError("\(name): refused seed \(seed)"))
                    default:
                        let image = RGBImage(width: 1, height: 1, pixels: [UInt8(seed & 0xFF), 0, 0])
                        let metadata = ImageMetadata(parameters: job.parameters, model: job.model, t5: false, shift: 3, precision: "server", seconds: 0)
                        continuation.yield(.finished(image: image, metadata: metadata, seconds: 0))
                        continuation.finish()
                    }
                }
            }
        }
    }

    static func jobs(_ count: Int) -> [ComfyUIJob] {
        (0..<count).map { i in
            var p = GenerationParameters(prompt: "x")
            p.seed = UInt64(100 + i)
            return ComfyUIJob(parameters: p, model: "m.safetensors")
        }
    }

    static func seeds(_ outcomes: [JobQueue.Outcome]) -> [UInt64?] {
        outcomes.map { if case let .finished(image, _, _) = $0 { return UInt64(image.pixels[0]) } else { return nil } }
    }

    @Test func nineJobsOverThreeWorkersAreEachMadeOnce() async {
        let workers = [ScriptedWorker("a"), ScriptedWorker("b"), ScriptedWorker("c")]
        let outcomes = await JobQueue(workers: workers).run(Self.jobs(9)) { _ in }
        #expect(Self.seeds(outcomes) == (100...108).map { Optional(UInt64($0)) })
        let made = workers.flatMap(\.made)
        #expect(made.sorted() == Array(100...108).map(UInt64.init))
        #expect(workers.allSatisfy { !$0.made.isEmpty }, "every worker took jobs: \(workers.map(\.made))")
    }

    /// A worker that dies mid-grid gives its job back; the others finish everything, nothing twice.
    @Test func aDeadWorkersJobsFinishElsewhere() async {
        let dead = ScriptedWorker("dead", alwaysLoses: true)
        let live = [ScriptedWorker("a"), ScriptedWorker("b")]
        let outcomes = await JobQueue(workers: [dead] + live, pauseAfterLoss: 0.05).run(Self.jobs(9)) { _ in }
        #expect(Self.seeds(outcomes) == (100...108).map { Optional(UInt64($0)) })
        #expect(live.flatMap(\.made).sorted() == Array(100...108).map(UInt64.init))
        #expect(dead.attempts <= JobQueue.lossesBeforeRetiring)
    }

    /// One server restarting mid-job: the same worker runs the job again after its pause.
    @Test func aRestartedServerRunsTheJobAgain() async {
        let worker = ScriptedWorker("only", loses: [101])
        let outcomes = await JobQueue(workers: [worker], pauseAfterLoss: 0.05).run(Self.jobs(3)) { _ in }
        #expect(Self.seeds(outcomes) == [100, 101, 102])
        #expect(worker.made == [100, 101, 102] && worker.attempts == 4)
    }

    /// A refusal (a bad input, a missing model) is that job's error; the rest still finish.
    @Test func aRefusedJobIsItsOwnError() async {
        let outcomes = await JobQueue(workers: [ScriptedWorker("a", refuses: [102])]).run(Self.jobs(4)) { _ in }
        #expect(Self.seeds(outcomes) == [100, 101, nil, 103])
        guard case let .failed(error) = outcomes[2] else { Issue.record("job 2 finished"); return }
        #expect("\(error)" == "a: refused seed 102")
    }

    /// With every worker gone, the jobs left end with the last loss, not silently.
    @Test func noWorkerLeftFailsTheRestWithTheReason() async {
        let outcomes = await JobQueue(workers: [ScriptedWorker("gone", alwaysLoses: true)], pauseAfterLoss: 0.05).run(Self.jobs(2)) { _ in }
        #expect(Self.seeds(outcomes) == [nil, nil])
        guard case let .failed(error) = outcomes[0] else { return }
        #expect("\(error)" == "gone went away")
    }

    @Test func cancellingTheCallerStopsTheRest() async {
        let workers = [ScriptedWorker("a")]
        let task = Task { await JobQueue(workers: workers).run(Self.jobs(50)) { _ in } }
        try? await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let outcomes = await task.value
        let finished = Self.seeds(outcomes).compactMap { $0 }.count
        // The job running at the cancel may have been made by the worker; its image is dropped, not saved.
        #expect(outcomes.count == 50 && finished <= workers[0].made.count && workers[0].made.count <= finished + 1 && finished < 50)
        for case let .failed(error) in outcomes { #expect(error is CancellationError) }
    }
}
