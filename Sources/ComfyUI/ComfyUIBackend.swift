import Checksums
import Foundation
import ImageIO
import ImageMetadata
import SD3

/// Runs jobs on one ComfyUI server with the local engine's event stream (`GenerationEvent`): `progress` messages become
/// steps, JPEG preview frames their previews, SaveImageWebsocket's PNG frame the finished image. Blocking I/O on a
/// thread of its own per job; cancelling the consumer interrupts the prompt on the server (`POST /interrupt`) or takes
/// it off the queue, and closes the socket.
public final class ComfyUIBackend: Sendable {
    public let server: ComfyUIServer
    /// Client and prompt ids: lowercase UUIDs (tests give fixed ones to replay recorded traffic).
    let makeID: @Sendable () -> String
    /// The server's file lists, asked once per backend (its /object_info answers can be megabytes).
    private let listed = FilesCache()

    /// The server's files, from the first call on.
    public func files() throws(RemoteError) -> ComfyUIServer.Files {
        if let files = listed.value { return files }
        let files = try server.files()
        listed.value = files
        return files
    }

    public init(server: ComfyUIServer) {
        self.server = server
        makeID = { UUID().uuidString.lowercased() }
    }

    init(server: ComfyUIServer, ids: @escaping @Sendable () -> String) {
        self.server = server
        makeID = ids
    }

    /// The name an init image is uploaded under: its content's, so the same image is one file on the server.
    public static func uploadName(_ png: [UInt8]) -> String { "sd3-studio-\(SHA256.hex(png).prefix(16)).png" }

    /// A job that did not finish because the server went away or forgot it (restarted): another server, or the same
    /// one later, can run it again; `reason` is the one line to show.
    public struct Lost: Error, CustomStringConvertible, Sendable {
        public let reason: String
        public var description: String { reason }
    }

    public func generate(_ job: ComfyUIJob) -> AsyncThrowingStream<GenerationEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, Error>.makeStream()
        let run = JobRun(backend: self, job: job, clientID: makeID(), promptID: makeID(), continuation: continuation)
        continuation.onTermination = { termination in
            if case .cancelled = termination { run.cancel() }
        }
        let thread = Thread { run.start() }
        thread.name = "sd3-comfyui"
        thread.start()
        return stream
    }
}

/// One job's life on the server, on its own thread.
final class JobRun: @unchecked Sendable {
    let server: ComfyUIServer
    let job: ComfyUIJob
    let clientID: String
    let promptID: String
    let continuation: AsyncThrowingStream<GenerationEvent, Error>.Continuation
    private let lock = NSLock()
    private var cancelled = false
    private var submitted = false
    private var socket: WebSocket?
    private let started = Date()

    let backend: ComfyUIBackend

    init(backend: ComfyUIBackend, job: ComfyUIJob, clientID: String, promptID: String,
         continuation: AsyncThrowingStream<GenerationEvent, Error>.Continuation) {
        (self.backend, self.server, self.job) = (backend, backend.server, job)
        (self.clientID, self.promptID, self.continuation) = (clientID, promptID, continuation)
    }

    var isCancelled: Bool { lock.withLock { cancelled } }

    /// From the consumer's side (any thread, the studio's main actor too: nothing here blocks it): our socket closes
    /// at once; on a thread of its own the server is asked to stop the prompt (running) or drop it (waiting).
    func cancel() {
        let (wasSubmitted, socket) = lock.withLock { () -> (Bool, WebSocket?) in
            cancelled = true
            return (submitted, self.socket)
        }
        socket?.cancel()
        guard wasSubmitted else { return }
        let (server, promptID) = (self.server, self.promptID)
        Thread {
            try? server.interrupt(promptID: promptID)
            try? server.dequeue(promptID: promptID)
        }.start()
    }

    func start() {
        do {
            let result: (image: RGBImage, metadata: ImageMetadata)
            do {
                result = try run()
            } catch let error as RemoteError where error.isLink && !lock.withLock({ submitted }) {
                // Nothing is queued there yet: another server can take the job as it is.
                throw ComfyUIBackend.Lost(reason: error.description)
            }
            continuation.yield(.finished(image: result.image, metadata: result.metadata, seconds: Date().timeIntervalSince(started)))
            continuation.finish()
        } catch {
            continuation.finish(throwing: isCancelled ? CancellationError() : error)
        }
    }

    private func run() throws -> (image: RGBImage, metadata: ImageMetadata) {
        continuation.yield(.loading(model: "\(job.model) on \(server.address.name)"))
        var job = try backend.files().resolve(self.job, server: server.address.name)
        if let image = job.parameters.initImage {
            // The server encodes the image at its own size; ours resizes it to the output size first, as diffusers does.
            let png = try PNGFile.encode(ComfyUIJob.sized(image, job.parameters))
            job.uploadedImage = try server.upload(png: png, name: ComfyUIBackend.uploadName(png))
        }
        let workflow = try ComfyUIWorkflow(job)
        try openSocket()
        if isCancelled { throw CancellationError() }
        try server.submit(workflow, clientID: clientID, promptID: promptID)
        // A cancel that came while the prompt was being posted has not told the server yet.
        let cancelledMeanwhile = lock.withLock { () -> Bool in
            submitted = true
            return cancelled
        }
        if cancelledMeanwhile { cancel(); throw CancellationError() }
        let image = try follow(workflow)
        var metadata = ImageMetadata(parameters: job.parameters, model: job.model, t5: job.t5 != nil,
                                     shift: job.parameters.shift ?? ComfyUIJob.defaultShift, precision: "server",
                                     seconds: Date().timeIntervalSince(started))
        metadata.model = job.model
        metadata.modelPath = job.model
        metadata.backend = server.address.description
        metadata.remote = .init(modelFolder: job.modelFolder.rawValue, clipL: job.clipL, clipG: job.clipG, t5: job.t5, vae: job.vae)
        if !job.loras.isEmpty {
            metadata.loras = job.loras.map { .init(name: $0.name, strength: $0.strength, hash: "server") }
        }
        return (image, metadata)
    }

    private func openSocket() throws(RemoteError) {
        let socket = try WebSocket(server: server.address, path: "/ws?clientId=\(clientID)", timeouts: server.timeouts)
        let stale = lock.withLock { () -> WebSocket? in
            defer { self.socket = socket }
            return self.socket
        }
        stale?.close()
        if isCancelled { socket.cancel() }
    }

    /// Reads the socket until our prompt finishes; a dropped socket is reopened and `/history` asked what happened.
    private func follow(_ workflow: ComfyUIWorkflow) throws -> RGBImage {
        var progress = ProgressTracker(job: job, workflow: workflow, started: started)
        var drops = 0
        while true {
            do {
                guard let socket = lock.withLock({ self.socket }) else { throw RemoteError("no socket") }
                while true {
                    let message = try socket.receive()
                    for event in try progress.take(message, promptID: promptID, server: server.address.name) { continuation.yield(event) }
                    if let image = progress.image, progress.succeeded { return image }
                    if progress.succeeded { return try fromHistory(workflow) }
                }
            } catch let error as RemoteError where error.isLink {
                if isCancelled { throw CancellationError() }
                for event in progress.flush() { continuation.yield(event) }
                drops += 1
                guard drops <= 5 else { throw ComfyUIBackend.Lost(reason: "\(server.address.name): the connection kept dropping (\(error))") }
                if let image = try recover(workflow, after: error) { return image }
            }
        }
    }

    /// After a dropped socket: reconnect (for up to `Timeouts.recovery`), then ask `/history` and `/queue` where the prompt is.
    /// Finished: its image from the history's PreviewImage. Failed: the server's error. Gone from both (the server
    /// restarted): `Lost`. Still queued or running: nil, and `follow` reads the new socket.
    private func recover(_ workflow: ComfyUIWorkflow, after error: RemoteError) throws -> RGBImage? {
        let deadline = Date().addingTimeInterval(server.timeouts.recovery)
        var last = error
        // Refused connections for a while mean the process is gone (a restart would forget the prompt anyway).
        var refusedSince: Date?
        while true {
            if isCancelled { throw CancellationError() }
            do {
                try openSocket()
                if let outcome = try server.history(promptID: promptID, outputNode: workflow.historyOutput) {
                    switch outcome {
                    case let .failed(reason): throw RemoteError("\(server.address.name): \(reason)")
                    case .images: return try fromHistory(workflow)
                    }
                }
                guard try server.queueContains(promptID) else {
                    throw ComfyUIBackend.Lost(reason: "\(server.address.name) lost the job (restarted?) after: \(error)")
                }
                return nil
            } catch let error as RemoteError where error.isLink {
                last = error
                refusedSince = error.isRefused ? refusedSince ?? Date() : nil
                let goneFor = refusedSince.map { Date().timeIntervalSince($0) } ?? 0
                guard Date() < deadline, goneFor < Self.refusedGrace else {
                    throw ComfyUIBackend.Lost(reason: "\(server.address.name) went away mid-job: \(last)")
                }
                Thread.sleep(forTimeInterval: 1)
            }
        }
    }

    /// Seconds of refused connections after which a server counts as gone.
    static let refusedGrace = 5.0

    /// The image PreviewImage left in the server's temp folder.
    private func fromHistory(_ workflow: ComfyUIWorkflow) throws -> RGBImage {
        guard case let .images(images)? = try server.history(promptID: promptID, outputNode: workflow.historyOutput), let first = images.first else {
            throw RemoteError("\(server.address.name) finished the job but its history has no image")
        }
        return try PNGFile.decode(try server.view(first), name: "\(server.address.name)'s image \(first.filename)").image
    }
}

extension ComfyUIJob {
    /// The init image at the output size (Pillow-exact Lanczos, as `VaeImageProcessor`), as it is uploaded.
    public static func sized(_ image: RGBImage, _ p: GenerationParameters) -> RGBImage {
        image.width == p.width && image.height == p.height ? image : LanczosResize.resize(image, width: p.width, height: p.height)
    }

    /// ComfyUI's own shift for SD3 and SD3.5 (comfy/supported_models.py, SD3's sampling_settings), recorded when the
    /// job left the shift to the model.
    public static let defaultShift = 3.0
}

extension ComfyUIServer {
    /// Whether a prompt is running or waiting: `/queue` lists `[number, prompt_id, prompt, extra, outputs]` per entry.
    func queueContains(_ promptID: String) throws(RemoteError) -> Bool {
        let value = try getJSON("/queue")
        let entries = (value["queue_running"].array ?? []) + (value["queue_pending"].array ?? [])
        return entries.contains { $0[1].string == promptID }
    }
}

/// The file lists once fetched.
final class FilesCache: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: ComfyUIServer.Files?
    var value: ComfyUIServer.Files? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
