import ArgumentParser
import ComfyUI
import Foundation
import ImageIO
import ImageMetadata
import RegularFiles
import SD3
import StudioCore
import Tensors

/// `sd3 generate --backend comfyui://…`: the same flags, sent as ComfyUI workflows to one or more servers.
extension GenerateCommand {
    /// The servers `--backend` names (and whether `local`, this machine's engine, is one of the workers), or nil for
    /// the local engine alone (onednn, openblas, local, or no flag). Addresses and [[backends]] names are read by
    /// `ConfigFile.servers`, as the studio's --backend is.
    static func servers(_ text: String?, config: ConfigFile) throws -> (servers: [StudioBackend], local: Bool)? {
        guard let text, !["onednn", "openblas", "local"].contains(text) else { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let locals = parts.filter { $0 == "local" }.count
        guard locals <= 1 else { throw CommandError("--backend names local twice") }
        let servers: [StudioBackend]
        do {
            servers = try config.servers(parts.filter { $0 != "local" }.joined(separator: ","), otherChoices: "onednn, openblas, local, ")
        } catch {
            throw CommandError(error.description)
        }
        if let repeated = Dictionary(grouping: servers, by: \.address.name).first(where: { $0.value.count > 1 })?.key {
            throw CommandError("--backend names \(repeated) twice")
        }
        return (servers, locals == 1)
    }

    func runRemote(on backends: [StudioBackend], local: Bool, settings: ConfigFile, recalled r: ImageMetadata?) throws {
        let c = settings.defaults
        let servers = backends.map(\.address)
        // Without --model (or a recalled one), a configured entry's model and its files stand in for the flags.
        let entry = model == nil && r?.backend == nil ? backends.first { $0.model != nil } : nil
        for (flag, given) in [("--precision", precision != nil && !local), ("--threads", threads != nil && !local), ("--keep-loaded", keepLoaded),
                              ("--save-latents", saveLatents != nil), ("--taesd", taesd != nil), ("--config-from", files.configFrom != nil),
                              ("--recipe", recipe != nil), ("--max-sequence-length", maxSequenceLength != nil)] where given {
            throw CommandError("\(flag) is for the local engine; a ComfyUI server uses its own settings")
        }
        if localModel != nil && !local { throw CommandError("--local-model is for --backend local,comfyui://…: the local engine's model beside the servers'") }
        guard let model = model ?? (r?.backend != nil ? r?.modelPath : nil) ?? entry?.model else {
            throw CommandError("give --model NAME: a file in the server's checkpoints or diffusion_models folder (sd3 models --backend lists them)")
        }
        guard let prompt = prompt ?? r?.prompt ?? c.prompt.flatMap({ $0.isEmpty ? nil : $0 }) else { throw ValidationError("give --prompt") }
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = negativePrompt ?? r?.negativePrompt ?? c.negativePrompt ?? ""
        p.width = width ?? r?.width ?? c.width ?? 1024
        p.height = height ?? r?.height ?? c.height ?? 1024
        p.steps = steps ?? r?.steps ?? c.steps ?? 28
        p.guidanceScale = guidance ?? r?.guidanceScale ?? c.guidance ?? 7
        p.seed = seed ?? r?.seed ?? (c.seedMode == .random ? nil : c.seed) ?? UInt64.random(in: 0...UInt64(UInt32.max))
        p.shift = shift ?? r?.shift ?? c.shift
        if variationSeed != nil || variationStrength != nil || r?.variation != nil {
            throw CommandError("variation seeds run on the local engine only (ComfyUI's KSampler has no variation noise)")
        }
        if let name = scheduler ?? r?.scheduler, name != SchedulerKind.euler.rawValue {
            throw CommandError("--scheduler \(name.oneLine) runs on the local engine only; ComfyUI jobs use euler with the normal schedule")
        }
        try applyInitImageAndSkipLayers(&p, recalled: r, defaults: c)
        let decoderName = decoder ?? r?.decoder ?? ImageDecoder.vae.rawValue
        guard let imageDecoder = ImageDecoder(rawValue: decoderName) else { throw CommandError("--decoder must be vae or taesd, not '\(decoderName.oneLine)'") }
        p.decoder = imageDecoder
        try Self.checkRemoteNumbers(p)
        let count = self.count ?? 1
        guard (1...10_000).contains(count) else { throw CommandError("--count must be between 1 and 10000, not \(count)") }
        guard count == 1 || p.seed <= UInt64.max - UInt64(count - 1) else { throw CommandError("--seed \(p.seed) + --count \(count) passes 2⁶⁴−1") }

        var job = ComfyUIJob(parameters: p, model: model)
        let recordedFiles = r?.backend != nil ? r?.remote : nil
        job.clipL = files.clipL ?? recordedFiles?.clipL ?? entry?.clipL
        job.clipG = files.clipG ?? recordedFiles?.clipG ?? entry?.clipG
        if let t5, ["on", "int8"].contains(t5) { throw CommandError("--t5 names a file on the server with a ComfyUI backend (or off)") }
        job.t5 = noT5 || t5 == "off" ? nil : t5 ?? recordedFiles?.t5 ?? entry?.t5
        job.vae = vae ?? (recordedFiles?.vae == "taesd3" ? nil : recordedFiles?.vae) ?? entry?.vae
        job.loras = try loras.map { text in
            let choice = try LoraChoice(parsing: text)
            return .init(name: choice.path, strength: choice.strength)
        }
        if loras.isEmpty, let recorded = r?.loras, r?.backend != nil { job.loras = recorded.map { .init(name: $0.name, strength: $0.strength) } }
        if let reason = ComfyUIWorkflow.unsupported(p) { throw CommandError(reason) }
        let preview = try Self.previewSettings(every: previewEvery, path: previewPath)
        let targets = try (0..<count).map { try Self.outputPath(output, seed: p.seed + UInt64($0)) }
        let jobs = (0..<count).map { i -> ComfyUIJob in
            var each = job
            each.parameters.seed = p.seed + UInt64(i)
            return each
        }
        log("\(count == 1 ? "1 image" : "\(count) images") on \(servers.map(\.name).joined(separator: ", ")): \(model), seed \(p.seed)\(count > 1 ? "…\(p.seed + UInt64(count - 1))" : ""), \(p.width)×\(p.height), \(p.steps) steps, guidance \(ImageMetadata.number(p.guidanceScale))")
        var workers: [any ImageWorker] = servers.map { ComfyUIBackend(server: ComfyUIServer($0)) }
        if local { workers.append(try localWorker(settings: settings, loras: job.loras)) }
        let queue = JobQueue(workers: workers)
        // Each image is written as it arrives (a long batch keeps what it made if it is stopped).
        let written = ResultBox<[Int: Result<String, Error>]>()
        written.value = [:]
        let noHistory = self.noHistory
        let progress = RemoteProgress(count: count, seeds: jobs.map(\.parameters.seed), preview: preview) { index, image, metadata, worker in
            let result = Result { () throws -> String in
                let path = try Self.writeNew(image, metadata: metadata, at: targets[index], extraText: Self.workflowText(jobs[index], metadata: metadata))
                if !noHistory { Self.addToHistory(file: path, metadata: metadata) }
                return path
            }
            written.update { $0?[index] = result }
            switch result {
            case let .success(path):
                print(path)
                log(String(format: "seed %llu done on %@ in %.1f s", jobs[index].parameters.seed, worker, metadata.seconds ?? 0))
            case let .failure(error):
                log("error: seed \(jobs[index].parameters.seed): \(error)")
            }
        }
        Interrupt.install()
        let seeds = jobs.map(\.parameters.seed)
        let outcomes = try waitInterruptibly {
            await queue.run(jobs, report: progress.report) { job, worker, reason in log("seed \(seeds[job]): \(worker) lost it, queued again: \(reason)") }
        }
        progress.finish()
        var failures: [Error] = []
        for (index, outcome) in outcomes.enumerated() {
            if case let .failed(error) = outcome {
                failures.append(error)
                if !(error is CancellationError) && count > 1 { log("error: seed \(jobs[index].parameters.seed): \(error)") }
            } else if case let .failure(error)? = written.value?[index] {
                failures.append(error)
            }
        }
        if Interrupt.requested {
            log("cancelled; \(count - failures.count) of \(count) written")
            throw ExitCode(130)
        }
        if let first = failures.first {
            if count == 1 { throw CommandError("\(first)") }
            throw CommandError("\(failures.count) of \(count) images failed")
        }
    }

    /// The local engine beside the servers: `--local-model`, else $SD3_MODEL, the config's model or the demo model.
    func localWorker(settings: ConfigFile, loras: [ComfyUIJob.RemoteLora]) throws -> EngineWorker {
        let environment = ProcessInfo.processInfo.environment
        guard let model = ModelChoice.resolve(given: localModel, configured: settings.model, environment: environment) else {
            throw CommandError("--backend local needs a local model: give --local-model DIR")
        }
        for lora in loras where !FileManager.default.fileExists(atPath: lora.name) {
            throw CommandError("--lora \(lora.name.oneLine) is a server's file name; with local in --backend a LoRA must also be a file here")
        }
        var options = LoadOptions()
        let precisionName = precision ?? settings.defaults.precision?.rawValue ?? "fp32"
        guard let chosen = Precision(rawValue: precisionName) else { throw ValidationError("--precision must be fp32 or bf16, not '\(precisionName)'") }
        options.precision = chosen
        options.threads = threads ?? settings.threads ?? ProcessInfo.processInfo.activeProcessorCount
        options.t5 = noT5 || t5 == "off" ? .off : .on
        options.withVAEEncoder = initImage != nil
        log("local engine: \(model)")
        return EngineWorker(engine: InferenceEngine(), model: model, options: options)
    }

    /// ComfyUI's own `prompt` text chunk: the API workflow as the server ran it, so ComfyUI loads the PNG too.
    static func workflowText(_ job: ComfyUIJob, metadata: ImageMetadata) -> [(key: String, value: String)] {
        var job = job
        if let remote = metadata.remote {
            job.modelFolder = ComfyUIJob.ModelFolder(rawValue: remote.modelFolder) ?? .checkpoints
            job.vae = remote.vae
        }
        if let image = job.parameters.initImage, let png = try? PNGFile.encode(ComfyUIJob.sized(image, job.parameters)) {
            job.uploadedImage = ComfyUIBackend.uploadName(png)
        }
        guard let workflow = try? ComfyUIWorkflow(job) else { return [] }
        return [("prompt", workflow.json.text)]
    }

    /// The numbers a server checks too, refused here first with the flag's name.
    static func checkRemoteNumbers(_ p: GenerationParameters) throws {
        let problems: [String?] = [
            GenerationLimits.problem("--guidance", p.guidanceScale, GenerationLimits.guidance),
            p.shift.flatMap { GenerationLimits.problem("--shift", $0, GenerationLimits.shift) },
            (1...10_000).contains(p.steps) ? nil : "--steps \(p.steps): must be between 1 and 10000",
            p.width % 16 == 0 && (16...16_384).contains(p.width) ? nil : "--width \(p.width): must be a multiple of 16 from 16 to 16384",
            p.height % 16 == 0 && (16...16_384).contains(p.height) ? nil : "--height \(p.height): must be a multiple of 16 from 16 to 16384",
            p.initImage == nil ? nil : GenerationLimits.problem("--strength", p.strength, 0...1),
        ]
        if let problem = problems.compactMap({ $0 }).first { throw CommandError(problem) }
    }
}

/// Runs async work from the synchronous command, cancelling it when Ctrl-C is pressed.
func waitInterruptibly<T: Sendable>(_ work: @escaping @Sendable () async -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let task = Task {
        box.value = await work()
        done.signal()
    }
    var cancelled = false
    while done.wait(timeout: .now() + 0.1) == .timedOut {
        if Interrupt.requested && !cancelled {
            cancelled = true
            log("cancelling…")
            task.cancel()
        }
    }
    return box.value!
}

final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    func update(_ change: (inout T?) -> Void) { lock.withLock { change(&stored) } }
}

/// Progress of remote jobs on standard error: one bar for a single image, one line per step otherwise; previews to
/// `--preview-path` as they come.
final class RemoteProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let single: ProgressLine?
    private let seeds: [UInt64]
    private let preview: (every: Int, path: String)?
    private let onImage: (Int, RGBImage, ImageMetadata, String) -> Void
    private var ended = false

    init(count: Int, seeds: [UInt64], preview: (every: Int, path: String)?, onImage: @escaping (Int, RGBImage, ImageMetadata, String) -> Void) {
        single = count == 1 ? ProgressLine() : nil
        self.seeds = seeds
        self.preview = preview
        self.onImage = onImage
    }

    var report: @Sendable (JobQueue.Report) -> Void { { [self] in self.take($0) } }

    private func take(_ report: JobQueue.Report) {
        lock.withLock {
            switch report.event {
            case let .loading(model):
                log("seed \(seeds[report.job]): \(model)")
            case let .step(index, total, _, _, image):
                if let single { single.update(step: index + 1, of: total) } else { log("seed \(seeds[report.job]) on \(report.worker): step \(index + 1)/\(total)") }
                if let preview, let image, (index + 1) % preview.every == 0 || index + 1 == total { try? PNGFile.write(image, to: preview.path) }
            case let .finished(image, metadata, _):
                endLine()
                onImage(report.job, image, metadata, report.worker)
            default:
                break
            }
        }
    }

    /// Ends the single image's bar once (a finished image ends it before its path is printed).
    func finish() { lock.withLock { endLine() } }

    private func endLine() {
        if !ended { single?.finish() }
        ended = true
    }
}
