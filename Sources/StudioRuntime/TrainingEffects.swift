import Foundation
import SD3
import StudioCore
import Training

/// The training panel's job: `sd3 train-lora`'s own code (LoraTrainingJob) on its own thread, its updates turned into
/// `training` actions on the main actor; Esc reaches it through the job's stop (a checkpoint, then `stopped`).
extension StudioSession {
    func startTraining(_ request: TrainingRequest) {
        let settings = Self.trainingSettings(request)
        var options = LoadOptions()
        options.precision = request.precision == .bf16 ? .bf16 : .fp32
        options.t5 = request.t5
        options.threads = config.threads
        options.files = request.model == config.model ? config.modelFiles : ModelSource.Extras()
        (options.withVAEEncoder, options.staged, options.cache) = (true, true, config.hubCache)
        let folders = config.loraFolders
        // The first LoRA folder may not exist yet (a fresh machine): a bare output name goes there, so it is made.
        let outputFolder = URL(fileURLWithPath: settings.output).deletingLastPathComponent().standardizedFileURL.path
        let makeFolder = outputFolder == folders.first.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let running = LoraTrainingJob(settings: settings, options: options).start {
            if makeFolder { try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true) }
        }
        trainingJob = running
        let started = Date()
        trainingTask = Task { @MainActor in
            do {
                for try await update in running.updates {
                    switch update {
                    case let .event(event):
                        send(.training(Self.report(event)))
                    case let .ended(.finished(output, _, steps)):
                        // Read as the LoRA list reads any file (layout, hash), off the main actor.
                        let read = await Task.detached { Self.readLora(output, folders: folders) }.value
                        let seconds = Date().timeIntervalSince(started)
                        if case let .loraRead(entry) = read {
                            send(.training(.finished(output: output, steps: steps, seconds: seconds, lora: entry, problem: nil)))
                        } else {
                            let problem = if case let .failed(message) = read { message } else { "not read" }
                            send(.training(.finished(output: output, steps: steps, seconds: seconds, lora: nil, problem: problem)))
                        }
                    case let .ended(.stopped(step, steps, checkpoint)):
                        send(.training(.stopped(step: step, steps: steps, checkpoint: checkpoint)))
                    }
                }
            } catch {
                send(.training(.failed(Self.trainingMessage(error))))
            }
            trainingJob = nil
        }
    }

    /// The request as the job's settings: `~` expanded, the checkpoint beside the output, resumed when it exists
    /// (starting again with the same settings continues a stopped run).
    nonisolated static func trainingSettings(_ request: TrainingRequest) -> LoraTrainingJob.Settings {
        func expanded(_ path: String) -> String { (path as NSString).expandingTildeInPath }
        var s = LoraTrainingJob.Settings(model: request.model, data: expanded(request.data), output: expanded(request.output), seed: request.seed)
        s.resume = FileManager.default.fileExists(atPath: s.checkpoint) ? s.checkpoint : nil
        (s.captionFiles, s.instancePrompt, s.resolution) = (request.captionFiles, request.instancePrompt, request.resolution)
        (s.rank, s.steps, s.lr) = (request.rank, request.steps, request.learningRate)
        (s.checkpointEvery, s.validationEvery, s.validationPrompt) = (request.every, request.every, request.validationPrompt)
        return s
    }

    nonisolated static func report(_ event: LoraTrainingJob.Event) -> TrainingReport {
        switch event {
        case let .note(line): .note(line)
        case let .preparing(what): .preparing(what)
        case let .started(step, steps, images): .started(step: step, steps: steps, images: images)
        case let .step(p): .step(step: p.step, steps: p.steps, loss: p.loss, secondsPerStep: p.secondsPerStep)
        case let .checkpoint(path, step): .checkpoint(path: path, step: step)
        case let .validation(step, image, path): .validation(step: step, image: image, path: path)
        }
    }

    /// One status line for a job's failure, with what to do where there is something to do.
    nonisolated static func trainingMessage(_ error: Error) -> String {
        switch error {
        case let error as LoraTrainingJob.OutputNotSaved:
            return "\(error.description): make room and press Enter again to resume from it"
        case let error as TrainingError:
            if case .checkpoint = error { return "\(error.description) (delete it, or give another output name, to start over)" }
            return error.description
        default:
            return "\(error)"
        }
    }
}
