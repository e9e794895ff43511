import ArgumentParser
import Foundation
import RegularFiles
import SD3
import StudioCore
import Tensors
import Training

/// `sd3 train-lora`: train_dreambooth_lora_sd3.py (diffusers 0.42.1) on the CPU, through the Training target. The
/// defaults are the script's (README of examples/dreambooth and its argparse), except where noted in the help: the
/// batch (the script's 4; 1 here, as docs/cli.md's Training LoRAs lists), the crop (centre, the script's
/// `--center_crop`) and the seed
/// (the script's None draws a random one; here too, printed and recorded in the checkpoint's run).
struct TrainLoraCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-lora",
        abstract: "Train a LoRA on a folder of images with captions (DreamBooth-LoRA, as diffusers' train_dreambooth_lora_sd3.py).")

    @Option(help: "A diffusers SD3 folder, a Hugging Face repo id in the local cache (ORG/NAME) or a single-file checkpoint. Default: $SD3_MODEL, else the demo model.")
    var model: String?
    @OptionGroup var files: ModelFiles
    @Option(help: "The images (.png, .jpg) with same-name .txt captions (kohya/DreamBooth layout).") var data: String
    @Option(name: .shortAndLong, help: "The LoRA file to write (diffusers/PEFT layout, .safetensors); its checkpoint goes beside it as NAME.checkpoint.")
    var output: String
    @Option(help: "LoRA rank (default 4, the script's --rank).") var rank = 4
    @Option(help: "LoRA alpha (default: the rank, as the script passes lora_alpha=rank).") var alpha: Double?
    @Option(help: "Optimizer steps (default 500, the script's --max_train_steps in its README).") var steps = 500
    @Option(help: "Learning rate (default 1e-4, the script's).") var lr = 1e-4
    @Option(help: "constant (default, the script's), constant_with_warmup, cosine (half a cycle) or linear: diffusers' get_scheduler.")
    var lrScheduler = "constant"
    @Option(help: "Warm-up steps of the schedules that have one (default 500, the script's --lr_warmup_steps).") var lrWarmupSteps = 500
    @Option(help: "Images per step (default 1; the script's --train_batch_size is 4).") var batch = 1
    @Option(help: "Gradient accumulation steps (default 1, the script's).") var accumulation = 1
    @Option(help: "Training side in pixels, a multiple of 16 (default 512, the script's).") var resolution = 512
    @Option(help: "Seed of torch's generator for the LoRA's initial weights, data order, noise and σ (default: a random one, printed).")
    var seed: UInt64?
    @Flag(help: "Do not load T5-XXL: its prompt embeddings are zeros (less memory; the script's text_encoder_3 still runs).") var noT5 = false
    @Option(help: "Tokens per text encoder for the captions (default 77, the script's --max_sequence_length).") var maxSequenceLength = 77
    @Option(help: "The caption of images without a .txt (the script's --instance_prompt).") var instancePrompt: String?
    @Option(help: "Modules to train, comma-separated (default: attn.to_q/k/v, attn.to_out.0, attn.add_q/k/v_proj, attn.to_add_out, the script's).")
    var loraLayers: String?
    @Option(help: "Write a checkpoint every N steps (default 100); one is also written at the end and on Ctrl-C.") var checkpointEvery = 100
    @Option(help: "The checkpoint file (default: the output's name with .checkpoint), or a folder to write NAME.checkpoint in.")
    var checkpoint: String?
    @Option(help: "Continue from this checkpoint (same model, rank, alpha, data and settings).") var resume: String?
    @Option(help: "Every --validation-every steps, draw this prompt with the LoRA so far into NAME-step-N.png.") var validationPrompt: String?
    @Option(help: "Steps between validation images (default 50, the script's --validation_epochs counted in steps).") var validationEvery = 50
    @Flag(inversion: .prefixedNo, help: "Gradient checkpointing: recompute each block in the backward pass (memory near inference's). Default on.")
    var checkpointing = true
    @Option(help: "fp32 (default) or bf16 base weights; the LoRA and the optimizer stay fp32.") var precision = "fp32"
    @Option(help: "Engine threads (default: all cores).") var threads: Int?

    func validate() throws {
        guard rank >= 1, rank <= 4096 else { throw ValidationError("--rank must be between 1 and 4096, not \(rank)") }
        if let alpha, !(alpha.isFinite && alpha > 0) { throw ValidationError("--alpha must be a positive number, not \(alpha)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, not \(steps)") }
        guard lr.isFinite, lr > 0 else { throw ValidationError("--lr must be a positive number, not \(lr)") }
        guard LearningRateSchedule.Kind(rawValue: lrScheduler) != nil else {
            throw ValidationError("--lr-scheduler must be one of \(LearningRateSchedule.Kind.allCases.map(\.rawValue).joined(separator: ", ")), not '\(lrScheduler.oneLine)'")
        }
        guard lrWarmupSteps >= 0 else { throw ValidationError("--lr-warmup-steps must be 0 or more, not \(lrWarmupSteps)") }
        guard batch >= 1, batch <= 1024 else { throw ValidationError("--batch must be between 1 and 1024, not \(batch)") }
        guard accumulation >= 1, accumulation <= 1024 else { throw ValidationError("--accumulation must be between 1 and 1024, not \(accumulation)") }
        guard resolution >= 16, resolution % 16 == 0 else { throw ValidationError("--resolution must be a positive multiple of 16, not \(resolution)") }
        guard (1...512).contains(maxSequenceLength) else { throw ValidationError("--max-sequence-length must be between 1 and 512, not \(maxSequenceLength)") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1, not \(checkpointEvery)") }
        guard validationEvery >= 1 else { throw ValidationError("--validation-every must be at least 1, not \(validationEvery)") }
        guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be fp32 or bf16, not '\(precision)'") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be between 1 and 1024, not \(threads)") }
        if let validationPrompt, validationPrompt.isEmpty { throw ValidationError("--validation-prompt is empty") }
        if let loraLayers, Self.layers(loraLayers).isEmpty { throw ValidationError("--lora-layers names no module") }
        guard output.hasSuffix(".safetensors"), (output as NSString).lastPathComponent != ".safetensors" else {
            throw ValidationError("--output must be a NAME.safetensors file, not '\(output)'")
        }
    }

    /// `--lora-layers` as the script splits it: at commas, each trimmed.
    static func layers(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The checkpoint's path: the flag's file, NAME.checkpoint inside the flag's folder, or beside the output.
    var checkpointPath: String {
        let name = ((output as NSString).lastPathComponent as NSString).deletingPathExtension + ".checkpoint"
        guard let checkpoint else { return ((output as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name) }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isFolder), isFolder.boolValue {
            return (checkpoint as NSString).appendingPathComponent(name)
        }
        return checkpoint
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let model = ModelChoice.resolve(given: model, configured: nil, environment: environment) else {
            throw ValidationError("no model: give --model DIR (a diffusers SD3 folder); the demo model was not found in \(DemoModel.folderName)")
        }
        var settings = LoraTrainingJob.Settings(model: model, data: data, output: output, checkpoint: checkpointPath,
                                                seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)))
        (settings.resume, settings.rank, settings.alpha, settings.steps, settings.lr) = (resume, rank, alpha, steps, lr)
        (settings.lrScheduler, settings.lrWarmupSteps) = (LearningRateSchedule.Kind(rawValue: lrScheduler) ?? .constant, lrWarmupSteps)
        (settings.batch, settings.accumulation, settings.resolution, settings.maxSequenceLength) = (batch, accumulation, resolution, maxSequenceLength)
        (settings.instancePrompt, settings.loraLayers) = (instancePrompt, loraLayers.map(Self.layers))
        (settings.checkpointEvery, settings.validationPrompt, settings.validationEvery) = (checkpointEvery, validationPrompt, validationEvery)
        settings.checkpointing = checkpointing
        // Every file this run writes, checked before any work: nothing is computed that could not be saved.
        try LoraTrainingJob.checkFiles(settings)
        if let resume, !FileManager.default.fileExists(atPath: resume) { throw CommandError("--resume \(resume): no such file") }
        var options = LoadOptions()
        options.precision = Precision(rawValue: precision)!
        options.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        options.t5 = noT5 ? .off : .on
        options.withVAEEncoder = true
        options.staged = true
        options.files = files.extras(t5File: nil)
        let job = LoraTrainingJob(settings: settings, options: options)
        var progress: ProgressLine?
        let outcome: LoraTrainingJob.Outcome
        do {
            outcome = try job.run(shouldStop: { Interrupt.requested }) { event in
                switch event {
                case let .note(line):
                    // Notes come before the first step and after the last.
                    progress?.finish()
                    progress = nil
                    log(line)
                case .preparing, .checkpoint:
                    break
                case let .started(step, _, _):
                    // Ctrl-C stops between steps from here on (before, it ends the process as usual).
                    Interrupt.install()
                    progress = ProgressLine(from: step)
                case let .step(p):
                    progress?.update(step: p.step, of: p.steps, detail: String(format: "loss %.4f (mean %.4f)", p.loss, p.meanLoss))
                case let .validation(_, _, path):
                    log("validation image \(path)")
                }
            }
        } catch let error as LoraTrainingJob.OutputNotSaved {
            progress?.finish()
            throw CommandError("\(error.description): make room and run again with --resume \(error.checkpoint)")
        } catch {
            progress?.finish()
            throw error
        }
        switch outcome {
        case let .stopped(step, steps, checkpoint):
            progress?.finish()
            let resume = checkpoint.map { "; checkpoint \($0) (continue with --resume \($0))" } ?? ""
            log("stopped after step \(step) of \(steps)\(resume)")
            throw ExitCode(130)
        case let .finished(output, _, _):
            print(output)
        }
    }
}
