import ComfyUI
import Foundation
import Hub
import ImageIO
import ImageMetadata
import SD3
import StudioCore
import Tensors
import Training

/// Where the studio keeps its files: the output folder and the favorites/history database (or why it could not
/// be opened: the studio still runs, and says so when it would save).
public struct StudioConfig: Sendable {
    public var model: String?
    public var outputFolder: OutputFolder
    public var store: Result<StudioStore, StoreError>
    public var threads: Int
    /// Separate encoder files for a single-file model.
    public var modelFiles = ModelSource.Extras()
    /// Where LoRA files are listed and looked for by name (`LoraCatalog.folders`).
    public var loraFolders: [String]
    /// The hub a pull asks (endpoint and token, as `sd3 models pull` resolves them) and the cache it writes and
    /// repo ids are read from.
    public var hub: HubSettings
    public var hubCache: HuggingFaceCache
    /// The TAESD3 previews and drafts decode with (`TAESDSource`); nil: the latent→RGB projection and the VAE.
    public var taesd: String?
    /// How the session reaches ComfyUI servers (tests give fakes).
    public var servers = ServerAccess()

    public init(model: String?, outputFolder: OutputFolder, store: Result<StudioStore, StoreError>,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount, modelFiles: ModelSource.Extras = ModelSource.Extras(),
                loraFolders: [String] = LoraCatalog.folders(environment: ProcessInfo.processInfo.environment),
                hub: HubSettings = HubSettings(token: nil), hubCache: HuggingFaceCache = HuggingFaceCache()) {
        (self.model, self.outputFolder, self.store, self.threads, self.modelFiles) = (model, outputFolder, store, threads, modelFiles)
        (self.loraFolders, self.hub, self.hubCache) = (loraFolders, hub, hubCache)
    }
}

/// What renders on a server and what asks it for its state: ComfyUI's by default.
public struct ServerAccess: Sendable {
    public var worker: @Sendable (ServerAddress) -> any ImageWorker
    /// Blocking; the session calls it off the main actor.
    public var probe: @Sendable (ServerAddress) -> BackendStatus

    public init(worker: @escaping @Sendable (ServerAddress) -> any ImageWorker = { ComfyUIBackend(server: ComfyUIServer($0)) },
                probe: @escaping @Sendable (ServerAddress) -> BackendStatus = BackendStatus.probe) {
        (self.worker, self.probe) = (worker, probe)
    }
}

/// Runs the reducer's effects: owns the engine (models stay loaded between runs) and the running generation,
/// consumes its events on the main actor and turns them back into actions. `onChange` tells the terminal a
/// redraw is due; the terminal coalesces those to ≤ 30 a second.
@MainActor
public final class StudioSession {
    public private(set) var state: StudioState
    public let config: StudioConfig
    public var onChange: () -> Void = {}
    public let engine: InferenceEngine
    private var generation: Task<Void, Never>?
    private var saving: Task<Void, Never>?
    private var pulling: Task<Void, Never>?
    private var recalling: Task<Void, Never>?
    /// The training job (TrainingEffects.swift): the task consuming its updates, and the job while it runs.
    var trainingTask: Task<Void, Never>?
    var trainingJob: LoraTrainingJob.Running?
    /// One worker per server address for the session's life: a ComfyUI backend asks for the server's file lists once.
    private var workers: [String: any ImageWorker] = [:]
    /// Who waits for the state to reach a condition (`waitUntil`), checked after every action.
    private var waiters: [(id: UUID, condition: (StudioState) -> Bool, resume: CheckedContinuation<Bool, Never>)] = []

    public init(state: StudioState, config: StudioConfig, engine: InferenceEngine = InferenceEngine()) {
        self.state = state
        self.config = config
        self.engine = engine
        if self.state.loraFolder.isEmpty { self.state.loraFolder = config.loraFolders.first ?? "" }
    }

    public func send(_ action: Action) {
        let reaction = reduce(&state, action)
        for effect in reaction.effects { perform(effect) }
        if reaction.redraw { onChange() }
        wakeWaiters()
    }

    /// True once `condition` holds for the state — checked now and after every action the session reduces, so
    /// nothing polls a clock — or false after `seconds` (a guard against hangs, not a speed limit). Only the state
    /// wakes it: a condition on anything else (a file, a worker) is never rechecked until the next action.
    public func waitUntil(seconds: Double = 300, _ condition: @escaping (StudioState) -> Bool) async -> Bool {
        if condition(state) { return true }
        let id = UUID()
        return await withCheckedContinuation { (resume: CheckedContinuation<Bool, Never>) in
            waiters.append((id, condition, resume))
            Task { @MainActor [weak self] in
                try? await Task.sleep(for: .seconds(seconds))
                self?.expire(id)
            }
        }
    }

    private func expire(_ id: UUID) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).resume.resume(returning: false)
    }

    private func wakeWaiters() {
        guard !waiters.isEmpty else { return }
        let ready = waiters.filter { $0.condition(state) }
        waiters.removeAll { waiter in ready.contains { $0.id == waiter.id } }
        for waiter in ready { waiter.resume.resume(returning: true) }
    }

    /// Waits for the running generation and any save to end (after a cancel they end within a transformer block).
    public func settle() async {
        await generation?.value
        await saving?.value
        await pulling?.value
        await recalling?.value
        await trainingTask?.value
    }

    private func perform(_ effect: Effect) {
        switch effect {
        case let .start(request):
            start(request)
        case .cancel:
            generation?.cancel()
        case let .save(image, metadata):
            let (folder, store) = (config.outputFolder, config.store)
            saving = Task { @MainActor in
                let result = await Task.detached {
                    Result { () throws(StoreError) -> HistoryRecord in
                        let (_, path) = try folder.save(image, metadata: metadata)
                        do throws(StoreError) { return try store.get().add(file: path, date: Date(), metadata: metadata) } catch {
                            throw StoreError("Saved \(path), but the history could not record it: \(error.description)")
                        }
                    }
                }.value
                report { .saved(try result.get()) }
            }
        case let .setFavorite(id, favorite):
            report {
                try config.store.get().setFavorite(id: id, favorite)
                return .favoriteSaved(id: id, favorite: favorite)
            }
        case let .loadBrowser(favoritesOnly):
            do {
                let listing = try config.store.get().listing(favoritesOnly: favoritesOnly)
                send(.browserLoaded(listing.records))
                if !listing.damaged.isEmpty {
                    send(.failed("Skipped damaged rows \(listing.damaged.map { "#\($0)" }.joined(separator: ", ")) (they cannot be read)"))
                }
            } catch {
                send(.failed(error.description))
            }
        case let .loadThumbnails(requests):
            Task { @MainActor in
                for request in requests {
                    // Esc closed the browser: the rest are not read.
                    guard state.browser != nil else { return }
                    let image = await Task.detached { Self.thumbnail(request.file) }.value
                    send(.thumbnailLoaded(id: request.id, image: image))
                }
            }
        case let .planDelete(id, file):
            send(.deletePlanned(id: id, deletion: config.outputFolder.deletion(of: file)))
        case let .delete(id, file):
            // The row goes first: a PNG left behind by a failed removal is an orphan file, never a row without one.
            // The file is looked at again as it is deleted: only the studio's own output goes (OutputFolder.deletion).
            let folder = config.outputFolder
            report {
                try config.store.get().delete(id: id)
                return .deleted(id: id, message: "Deleted #\(id) " + folder.delete(file))
            }
        case let .setNote(id, note):
            report {
                try config.store.get().setNote(id: id, note)
                return .noteSaved(id: id, note: note)
            }
        case let .recall(path):
            // Off the main actor: the file may be large or slow to read; Esc (cancelRecall) drops the answer.
            recalling?.cancel()
            recalling = Task { @MainActor in
                let result = await Task.detached { Result { () throws(MetadataError) in try MetadataReader.read(path) } }.value
                guard !Task.isCancelled else { return }
                switch result {
                case let .success(parameters):
                    send(.recalled(parameters, from: URL(fileURLWithPath: path).lastPathComponent))
                    // Its pixels for the preview pane; a file whose image we cannot decode keeps the pane as it is.
                    if let image = await Task.detached(operation: { try? PNGFile.read(path).image }).value, !Task.isCancelled {
                        send(.recalledImage(image))
                    }
                case let .failure(error): send(.failed(error.description))
                }
            }
        case .cancelRecall:
            recalling?.cancel()
        case .scanModels:
            let configured = [config.model].compactMap { $0 } + ModelChoice.listed(configured: nil, environment: ProcessInfo.processInfo.environment)
            let cache = config.hubCache
            Task { @MainActor in
                let entries = await Task.detached {
                    let environment = ProcessInfo.processInfo.environment
                    return ModelCatalog.scan(configured: configured, folders: [ModelCatalog.modelsFolder(environment: environment)], cache: cache)
                        .map { entry in
                            let source = try? ModelSource(entry.model, cache: cache)
                            return ModelPicker.Item(entry: entry, defaults: source.flatMap { try? ModelDefaults.resolved($0) },
                                                    guide: source.flatMap { PromptGuide.read(model: $0.path) })
                        }
                }.value
                send(.modelsFound(entries))
            }
        case let .pull(repo, skipT5):
            pull(repo, skipT5: skipT5)
        case .cancelPull:
            pulling?.cancel()
        case .probeBackends:
            let probe = config.servers.probe
            for (index, server) in state.backends.enumerated() {
                let address = server.address
                Task { @MainActor in
                    let status = await Task.detached { probe(address) }.value
                    send(.backendProbed(index: index, status))
                }
            }
        case let .startRemote(run):
            startRemote(run)
        case .scanLoras, .readLora, .locateLoras:
            performLoraEffect(effect)
        case let .startTraining(request):
            startTraining(request)
        case .stopTraining:
            trainingJob?.stop()
        case .quit:
            generation?.cancel()
            pulling?.cancel()
            trainingJob?.stop()
        }
    }

    /// `sd3 models pull REPO` in the background: the plan, then the files, progress reported about 4 times a second.
    private func pull(_ repo: String, skipT5: Bool) {
        var options = PullOptions()
        options.skipT5 = skipT5
        let pull = ModelPull(repo: repo, options: options, settings: config.hub, cacheRoot: config.hubCache.roots[0])
        pulling = Task { @MainActor in
            do {
                let plan = try await pull.plan()
                let progress = PullProgress(total: plan.bytesToFetch, files: plan.files.filter { $0.state != .cached }.count) { line in
                    Task { @MainActor in self.send(.pullProgress(repo: repo, progress: line)) }
                }
                send(.pullProgress(repo: repo, progress: progress.line()))
                let snapshot = try await pull.run(plan, progress: progress)
                send(.pullFinished(repo: repo, snapshot: snapshot))
            } catch is CancellationError {
                send(.pullStopped(repo: repo, error: nil))
            } catch {
                send(.pullStopped(repo: repo, error: Task.isCancelled ? nil : "\(error)"))
            }
        }
    }

    /// The LoRA list's file work, off the main actor: listing the LoRA folders, reading a LoRA (which checks its layout
    /// and base model), finding a recalled image's LoRAs.
    private func performLoraEffect(_ effect: Effect) {
        let folders = config.loraFolders
        Task { @MainActor in
            let action: Action = await Task.detached {
                switch effect {
                case .scanLoras:
                    return .lorasFound(LoraCatalog.scan(folders: folders), folder: folders.first ?? "")
                case let .readLora(text):
                    return Self.readLora(text, folders: folders)
                case let .locateLoras(records, source):
                    return .lorasLocated(records.map { LoraCatalog.locate($0, folders: folders) }, folder: folders.first ?? "", from: source)
                default:
                    return .failed("not a LoRA effect: \(effect)")
                }
            }.value
            send(action)
        }
    }

    nonisolated static func readLora(_ text: String, folders: [String]) -> Action {
        guard let path = LoraCatalog.resolve(text, folders: folders) else {
            let looked = text.contains("/") ? "" : " nor \(text).safetensors in \(folders.joined(separator: " or "))"
            return .failed("LoRA \(text): no such file\(looked)")
        }
        do {
            let file = try LoraFile(path: path)
            return .loraRead(LoraEntry(name: file.name, path: path, hash: file.shortHash, layout: file.layout))
        } catch let error as LoraError {
            return .failed(error.description)
        } catch {
            return .failed("LoRA \(error)")
        }
    }

    /// Runs a quick store or file call on the main actor and sends what it reports, or its error for the status line.
    /// (The calls throw StoreError, whose description is the message.)
    private func report(_ call: () throws -> Action) {
        do { send(try call()) } catch { send(.failed("\(error)")) }
    }

    /// A copy at most 128 pixels on its longer side, for the browser; nil when the file cannot be read.
    nonisolated static func thumbnail(_ file: String) -> RGBImage? {
        guard let image = try? PNGFile.read(file).image else { return nil }
        let scale = min(1, 128 / Double(max(image.width, image.height)))
        guard scale < 1 else { return image }
        return LanczosResize.resize(image, width: max(1, Int(Double(image.width) * scale)), height: max(1, Int(Double(image.height) * scale)))
    }

    /// How the engine loads `model` for the T5 and precision choices.
    private func loadOptions(model: String, t5: T5Mode, precision: PrecisionChoice) -> LoadOptions {
        var options = LoadOptions()
        options.precision = precision == .bf16 ? .bf16 : .fp32
        options.t5 = t5
        options.threads = config.threads
        // Separate encoder files belong to the model the studio was started with, not to one picked later.
        options.files = model == config.model ? config.modelFiles : ModelSource.Extras()
        // Always load the VAE encoder so switching to img2img does not reload the model.
        options.withVAEEncoder = true
        options.cache = config.hubCache
        (options.taesd, options.taesdOptional) = (config.taesd, true)
        return options
    }

    private func start(_ request: GenerationRequest) {
        let initImagePath = request.initImagePath
        let options = loadOptions(model: request.model, t5: request.t5, precision: request.precision)
        let engine = self.engine
        generation = Task { @MainActor in
            var parameters = request.parameters
            // The init image is read off the main actor (a large PNG takes a while to decode), turned upright by its
            // EXIF orientation as diffusers' load_image does.
            if let path = initImagePath {
                let read = await Task.detached { Result { () throws(ImageFile.Error) in try ImageFile.read(path, upright: true) } }.value
                switch read {
                case let .success(image): parameters.initImage = image
                case let .failure(error):
                    send(.generationStopped(error: "Init image: \(error.description)"))
                    return
                }
                guard !Task.isCancelled else { return send(.generationStopped(error: nil)) }
            }
            let stream = await engine.generate(parameters, model: request.model, options: options, loras: request.loras)
            await consume(stream)
        }
    }

    /// A generation's events through the reducer, then how it ended when it did not finish.
    private func consume(_ stream: AsyncThrowingStream<GenerationEvent, Error>) async {
        var finished = false
        do {
            for try await event in stream {
                if case .finished = event { finished = true }
                send(.engine(event))
            }
            // A `finished` that arrived just after Esc was ignored by the reducer: the job still ends.
            if !finished || state.job == .cancelling { send(.generationStopped(error: nil)) }
        } catch is CancellationError {
            send(.generationStopped(error: nil))
        } catch {
            send(.generationStopped(error: "\(error)"))
        }
    }

    private func worker(for server: StudioBackend, useT5: Bool) -> any ImageWorker {
        let key = server.address.description
        let base = workers[key] ?? config.servers.worker(server.address)
        workers[key] = base
        return BackendWorker(base: base, backend: server, useT5: useT5)
    }

    /// Renders on ComfyUI servers: one image through the same events as the engine's, or a grid's drafts spread over
    /// the servers by `JobQueue` (every seed once; a server that goes away has its jobs taken by the others), each
    /// event reported with its cell. Cancelling the task cancels every job (the servers interrupt them).
    private func startRemote(_ run: RemoteRun) {
        var workers = run.servers.map { worker(for: $0, useT5: run.useT5) }
        if let local = run.local {
            let engine = EngineWorker(engine: engine, model: local.model, options: loadOptions(model: local.model, t5: local.t5, precision: local.precision))
            workers.append(LocalDraftWorker(base: engine, loras: local.loras))
        }
        generation = Task { @MainActor in
            var jobs = run.jobs
            if let path = run.initImagePath {
                let read = await Task.detached { Result { () throws(ImageFile.Error) in try ImageFile.read(path, upright: true) } }.value
                switch read {
                case let .success(image): for i in jobs.indices { jobs[i].parameters.initImage = image }
                case let .failure(error): return send(.generationStopped(error: "Init image: \(error.description)"))
                }
                guard !Task.isCancelled else { return send(.generationStopped(error: nil)) }
            }
            guard run.grid else { return await consume(workers[0].generate(jobs[0])) }
            let queue = JobQueue(workers: workers)
            // Reports come from the workers' tasks; a stream keeps them in order on their way to the main actor.
            let (reports, sink) = AsyncStream<JobQueue.Report>.makeStream()
            let grid = jobs
            let running = Task.detached {
                let outcomes = await queue.run(grid) { sink.yield($0) }
                sink.finish()
                return outcomes
            }
            let outcomes = await withTaskCancellationHandler {
                for await report in reports { send(.gridEvent(cell: report.job, report.event)) }
                return await running.value
            } onCancel: {
                running.cancel()
            }
            if Task.isCancelled || state.job == .cancelling { return send(.generationStopped(error: nil)) }
            let failures = outcomes.compactMap { outcome -> String? in
                if case let .failed(error) = outcome { return "\(error)" }
                return nil
            }
            if let first = failures.first {
                send(.generationStopped(error: failures.count == 1 ? first : "\(failures.count) of \(jobs.count) drafts failed; the first: \(first)"))
            }
        }
    }
}
