import ComfyUI
import Foundation
import ImageIO
import ImageMetadata
import PollSupport
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// The session rendering on servers through scripted `ImageWorker`s (the ComfyUI client itself is tested against
/// recorded traffic in ComfyUITests): F5's image arrives through the engine's path and is saved with the server's
/// metadata; F6's drafts spread over two servers, each seed once, also when a third server refuses connections; Esc
/// stops every job. Waits are for the session's redraws, not for time.
@Suite(.serialized) struct BackendSessionTests {
    /// Every job a worker was given, across workers (the unreachable server's attempts too).
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [(worker: String, job: ComfyUIJob)] = []
        func add(_ worker: String, _ job: ComfyUIJob) { lock.withLock { entries.append((worker, job)) } }
        var all: [(worker: String, job: ComfyUIJob)] { lock.withLock { entries } }
    }

    /// A server that runs each job in `steps` steps, with a preview at the second, and answers a PNG-sized image whose
    /// pixels are the seed's low byte; `hold` keeps a job running until it is cancelled.
    struct ScriptedServer: ImageWorker {
        let name: String
        let log: Log
        var hold = false
        /// Seconds a step takes, so that a grid's jobs are not all taken before every worker has asked for one.
        var stepTime = 0.0

        func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error> {
            let (name, log, hold, stepTime) = (self.name, self.log, self.hold, self.stepTime)
            return AsyncThrowingStream { continuation in
                let task = Task {
                    log.add(name, job)
                    continuation.yield(.loading(model: "\(job.model) on \(name)"))
                    let total = job.parameters.steps
                    for index in 0..<total {
                        continuation.yield(.step(index: index, total: total, sigma: 1, elapsed: Double(index), preview: index == 1 ? Support.image : nil))
                        if stepTime > 0 { try? await Task.sleep(for: .seconds(stepTime)) } else { await Task.yield() }
                    }
                    if hold {
                        // Ends when the consumer cancels (Task.sleep returns early on cancellation).
                        try? await Task.sleep(for: .seconds(3600))
                        return continuation.finish(throwing: CancellationError())
                    }
                    let p = job.parameters
                    let image = RGBImage(width: p.width, height: p.height, pixels: [UInt8](repeating: UInt8(p.seed & 0xFF), count: p.width * p.height * 3))
                    var metadata = ImageMetadata(parameters: p, model: job.model, t5: job.t5 != nil, shift: p.shift ?? 3, precision: "server", seconds: 0.5)
                    metadata.modelPath = job.model
                    metadata.backend = "comfyui://\(name)"
                    continuation.yield(.finished(image: image, metadata: metadata, seconds: 0.5))
                    continuation.finish()
                }
                continuation.onTermination = { _ in task.cancel() }
            }
        }
    }

    /// A worker that logs each job it is given before its base runs it.
    struct Attempts: ImageWorker {
        let base: any ImageWorker
        let log: Log
        var name: String { base.name }
        func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error> {
            log.add(name, job)
            return base.generate(job)
        }
    }

    static let gpu = StudioBackend(name: "gpu", address: ServerAddress(host: "127.0.0.1", port: 18188), model: "tiny-sd3.safetensors",
                                   clipL: "clip_l.safetensors", vae: "sd3_vae.safetensors")
    static let spare = StudioBackend(name: "spare", address: ServerAddress(host: "127.0.0.1", port: 18189), model: "tiny-sd3-copy.safetensors")
    /// A real ComfyUI client pointed at a port where nothing listens (port 1 on loopback): connections are refused, so
    /// its jobs are `Lost` and go to the other servers.
    static let gone = StudioBackend(name: "gone", address: ServerAddress(host: "127.0.0.1", port: 1), model: "tiny-sd3.safetensors")

    @MainActor
    static func session(folder: String, log: Log, hold: Bool = false, servers: [StudioBackend] = [gpu, spare, gone], grid: Int = 4,
                        initImage: String? = nil, stepTime: Double = 0, localDrafts: Bool = false) throws -> StudioSession {
        var state = StudioState(model: Support.tinyModel, randomSeed: 1)
        state.set(.prompt, "a red circle")
        for (field, value) in [(FieldID.width, "32"), (.height, "32"), (.steps, "4"), (.seed, "40")] { state.set(field, value) }
        (state.backends, state.backend, state.draft.count, state.localDrafts) = (servers, 0, grid, localDrafts)
        (state.maxSequenceLength, state.t5) = (32, .on)
        if let initImage { (state.editors[.initImage], state.editors[.strength]) = (TextEditor(initImage), TextEditor("0.3")) }
        let store = try StudioStore(path: folder + "/studio.sqlite")
        var config = StudioConfig(model: Support.tinyModel, outputFolder: OutputFolder(path: folder + "/outputs"), store: .success(store), threads: 1)
        config.servers = ServerAccess(
            worker: { address in
                address.port == 1 ? Attempts(base: ComfyUIBackend(server: ComfyUIServer(address)), log: log) as any ImageWorker
                    : ScriptedServer(name: address.name, log: log, hold: hold, stepTime: stepTime)
            },
            probe: { address in
                address.port == 1 ? .unreachable("\(address.name): cannot connect: Connection refused") : .reachable(queue: 0, device: "cpu")
            })
        return StudioSession(state: state, config: config)
    }

    /// Returns once `condition` holds (the session checks it after every action; the suite's time limit guards hangs).
    @MainActor
    static func until(_ session: StudioSession, _ condition: @escaping (StudioState) -> Bool) async {
        _ = await session.waitUntil(condition)
    }

    @MainActor
    @Test(.timeLimit(.minutes(10))) func pickerAsksEachServer() async throws {
        let session = try Self.session(folder: Support.temporaryFolder(), log: Log())
        session.send(.showBackends)
        await Self.until(session) { $0.backendStatus.values.allSatisfy { $0 != .checking } }
        #expect(session.state.backendStatus == [0: .reachable(queue: 0, device: "cpu"), 1: .reachable(queue: 0, device: "cpu"),
                                                2: .unreachable("127.0.0.1:1: cannot connect: Connection refused")])
    }

    /// F5 on the chosen server: steps and the preview as from the engine, then the image saved with `Backend`.
    @MainActor
    @Test(.timeLimit(.minutes(10))) func generateSavesTheServersImage() async throws {
        let folder = Support.temporaryFolder(), log = Log()
        let session = try Self.session(folder: folder, log: log)
        var sawStep = false, sawPreview = false
        session.onChange = {
            if case .running(.denoising(2, 4, _)) = session.state.job { sawStep = true }
            if session.state.preview == Support.image { sawPreview = true }
        }
        session.send(.generate)
        await session.settle()
        let record = try #require(session.state.current, "not saved: \(session.state.status.text)")
        #expect(sawStep && sawPreview, "step 2/4 and the preview reached the state")
        #expect(record.metadata.backend == "comfyui://127.0.0.1:18188" && record.metadata.modelPath == "tiny-sd3.safetensors" && record.metadata.seed == 40)
        let image = try PNGFile.read(record.file).image
        #expect(image.width == 32 && image.pixels.allSatisfy { $0 == 40 })
        let jobs = log.all
        #expect(jobs.count == 1 && jobs[0].worker == "127.0.0.1:18188")
        #expect(jobs[0].job.model == "tiny-sd3.safetensors" && jobs[0].job.clipL == "clip_l.safetensors" && jobs[0].job.vae == "sd3_vae.safetensors")
        #expect(jobs[0].job.parameters.prompt == "a red circle" && jobs[0].job.parameters.steps == 4)
    }

    /// img2img on a server: the session reads the init image and sends it with the strength; a missing file is one line.
    @MainActor
    @Test(.timeLimit(.minutes(10))) func img2imgSendsTheInitImage() async throws {
        let folder = Support.temporaryFolder(), log = Log()
        try PNGFile.write(Support.image, to: folder + "/start.png")
        let session = try Self.session(folder: folder, log: log, initImage: folder + "/start.png")
        session.send(.generate)
        await session.settle()
        let sent = try #require(log.all.first?.job.parameters, "nothing sent: \(session.state.status.text)")
        #expect(sent.initImage == Support.image && sent.strength == 0.3 && session.state.current?.metadata.strength == 0.3)

        let missing = try Self.session(folder: folder, log: log, initImage: folder + "/gone.png")
        missing.send(.generate)
        await missing.settle()
        #expect(log.all.count == 1 && missing.state.status.isError && missing.state.status.text.hasPrefix("Init image: "), "\(missing.state.status.text)")
    }

    /// F6 over the three servers, one of which refuses connections: every seed once, each on a live server with that
    /// server's model, each in its cell.
    @MainActor
    @Test(.timeLimit(.minutes(10))) func gridSpreadsEverySeedOnce() async throws {
        let folder = Support.temporaryFolder(), log = Log()
        let session = try Self.session(folder: folder, log: log, grid: 9, stepTime: 0.01)
        session.send(.explore)
        guard session.state.isRunning else { Issue.record("did not start: \(session.state.status.text)"); return }
        await session.settle()
        let grid = try #require(session.state.explore)
        #expect(session.state.job == .finished(seconds: 4.5), "\(session.state.status.text)")
        #expect(grid.finishedCount == 9 && grid.seeds == Array(40...48))
        for (seed, image) in zip(grid.seeds, grid.images) { #expect(image?.pixels.first == UInt8(seed), "seed \(seed) in its cell") }
        let jobs = log.all.filter { $0.worker != "127.0.0.1:1" }
        #expect(log.all.contains { $0.worker == "127.0.0.1:1" }, "the unreachable server was given a job (and lost it)")
        #expect(jobs.map(\.job.parameters.seed).sorted() == Array(40...48), "every seed once")
        #expect(Set(jobs.map(\.worker)) == ["127.0.0.1:18188", "127.0.0.1:18189"])
        for (worker, job) in jobs {
            #expect(job.model == (worker == "127.0.0.1:18188" ? "tiny-sd3.safetensors" : "tiny-sd3-copy.safetensors"), "each server's own model")
            #expect(job.parameters.width == 32 && job.parameters.steps == 4)
        }
        #expect(try StudioStore(path: folder + "/studio.sqlite").records().isEmpty, "drafts are not saved")
    }

    /// A grid over one server and the local engine (the tiny fixture model): every seed once, the engine's drafts
    /// beside the server's in their cells.
    @MainActor
    @Test(.timeLimit(.minutes(10))) func localEngineTakesDrafts() async throws {
        let folder = Support.temporaryFolder(), log = Log()
        let session = try Self.session(folder: folder, log: log, servers: [Self.gpu], stepTime: 0.05, localDrafts: true)
        session.send(.explore)
        await session.settle()
        let grid = try #require(session.state.explore)
        #expect(session.state.job == .finished(seconds: grid.seconds) && grid.finishedCount == 4, "\(session.state.status.text)")
        let served = Set(log.all.map(\.job.parameters.seed))
        #expect(log.all.count == served.count && served.count < 4, "the server made \(log.all.count) drafts, the engine the rest")
        for (seed, image) in zip(grid.seeds, grid.images) {
            let image = try #require(image)
            let uniform = image.pixels.allSatisfy { $0 == UInt8(seed) }
            #expect(uniform == served.contains(seed), "seed \(seed): \(served.contains(seed) ? "the server's" : "the engine's") draft")
            #expect(image.width == 32 && image.height == 32)
        }
    }

    /// Esc while every server holds a draft: all jobs end, the grid keeps what it had, nothing is saved.
    @MainActor
    @Test(.timeLimit(.minutes(10))) func escStopsEveryServer() async throws {
        let folder = Support.temporaryFolder(), log = Log()
        let session = try Self.session(folder: folder, log: log, hold: true, servers: [Self.gpu, Self.spare])
        session.send(.explore)
        // The workers' log, not the session's state: polled (no action need follow the second job's start).
        try #require(await Poll.until(seconds: 300, every: 0.01) { log.all.count >= 2 }, "timed out waiting for both servers' jobs to start")
        session.send(.cancel)
        await session.settle()
        #expect(session.state.job == .idle && session.state.status.text.hasPrefix("Cancelled: 0 of 4 seeds rendered"), "\(session.state.status.text)")
        #expect(log.all.count == 2, "no job starts after Esc")
    }
}
