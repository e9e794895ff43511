import ArgumentParser
import Foundation
import SD3
import Tensors
import Training

/// `sd3 bench --component train-step`: optimizer steps of `sd3 train-lora` on the MMDiT of --config with random weights
/// made in memory (the VAE and text encoders are not part of a step): TrainingLoop.runStep with TransformerGradients
/// on TrainableSD3Transformer, a rank-`--rank` LoRA (alpha = rank) on the script's default target modules, fp32 LoRA
/// and AdamW state, gradient checkpointing unless --no-checkpointing. Each of the --batch examples is a random VAE
/// posterior [16, H/8, W/8] and random text embeddings [--text-tokens, joint_attention_dim] and pooled [pooled_dim];
/// σ from the script's logit-normal density. scripts/bench/train_step_torch.py is the same step in PyTorch.
extension BenchCommand {
    func trainStep(format: WeightFormat) throws {
        guard format != .int8 else { throw ValidationError("train-step: --precision fp32 or bf16") }
        let precision: Precision = format == .bf16 ? .bf16 : .fp32
        let c = config.transformer, (h, w) = (height / 8, width / 8)
        let compute = try Compute(backend: .oneDNN, threads: threads)
        print("LoRA training step, MMDiT \(config.rawValue) with random weights, \(width)×\(height), batch \(prompts), \(tokens) text tokens, "
              + "rank \(rank), \(precision.rawValue) base, checkpointing \(checkpointing ? "on" : "off"), \(threads) thread\(threads == 1 ? "" : "s"), "
              + "\(warmup) + \(`repeat`) steps; \(InstructionSet.summary(nativeBF16: (compute.backend as? OneDNNBackend)?.nativeBF16 ?? false))")

        let started = DispatchTime.now().uptimeNanoseconds
        var generator = TorchCPUGenerator(seed: 0)
        let lora = try TrainableLora(rank: rank, alpha: Double(rank), targets: TrainableLora.defaultTargets,
                                     linears: TransformerLinears.list(config: c), generator: &generator)
        let parameters = lora.makeParameters()
        let model = try TrainableSD3Transformer(config: c, weights: RandomWeights(compute: compute), precision: precision, loras: parameters)
        let setup = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        // Posterior mean uniform in ±1 and log-variance −6 (std 0.05), the order of an SD3 VAE's on real images.
        let posteriors = (0..<prompts).map { b in
            LatentPosterior(shape: [c.inChannels, h, w], mean: compute.randomUniform([c.inChannels, h, w], seed: 3 + UInt64(b)).data,
                            logvar: [Float](repeating: -6, count: c.inChannels * h * w))
        }
        let text = (0..<prompts).map { compute.randomUniform([tokens, c.jointAttentionDim], seed: 100 + UInt64($0)) }
        let pooled = (0..<prompts).map { compute.randomUniform([c.pooledProjectionDim], seed: 200 + UInt64($0)) }
        let gradients = TransformerGradients(model: model, parameters: parameters, compute: compute, checkpointing: checkpointing,
                                             text: text, pooled: pooled)
        let steps = warmup + `repeat`
        var settings = TrainingSettings(maxTrainSteps: steps, schedule: .init(kind: .constant, baseLR: 1e-4, trainingSteps: steps),
                                        shiftFactor: 0.0609, scalingFactor: 1.5305)  // SD3's VAE
        settings.batchSize = prompts
        var loop = TrainingLoop(settings: settings, sigmaSchedule: try TrainingSchedule(config: .init(shift: 3)),
                                posteriors: posteriors, lora: lora, generator: generator)
        print(String(format: "  model and LoRA (%d modules, %d parameters) made in %.1f s, RSS %.2f GB", lora.modules.count,
                     lora.parameterCounts.reduce(0, +), setup, Double(peakResidentBytes()) / 1e9))

        func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        var records: [(step: Double, gradients: Double, loss: Float)] = []
        var last: MicroBatch?
        for index in 0..<steps {
            var inGradients = 0.0
            let start = DispatchTime.now().uptimeNanoseconds
            let report = try loop.runStep { lora, batch in
                let t = DispatchTime.now().uptimeNanoseconds
                defer { inGradients += seconds(since: t) }
                return try gradients(lora, batch)
            }
            let total = seconds(since: start)
            last = report.microBatches.last
            guard report.loss.isFinite else { throw CommandError("train-step: the loss is \(report.loss) at step \(loop.step)") }
            print(String(format: "  step %d%@: %.2f s (forward + backward %.2f s, the rest %.2f s), loss %.5f, RSS %.2f GB", index + 1,
                         index < warmup ? " (warm-up)" : "", total, inGradients, total - inGradients, report.loss, Double(peakResidentBytes()) / 1e9))
            if index >= warmup { records.append((total, inGradients, report.loss)) }
        }
        // The forward alone (with the step's checkpointing, so the tape it keeps is the step's), on the last draw's input:
        // the backward recomputes each block's forward, so backward ≈ (forward + backward) − 2 × this when checkpointing.
        let batch = last!
        let batchText = Tensor(shape: [prompts, tokens, c.jointAttentionDim], data: text.flatMap(\.data))
        let batchPooled = Tensor(shape: [prompts, c.pooledProjectionDim], data: pooled.flatMap(\.data))
        let forwardStart = DispatchTime.now().uptimeNanoseconds
        _ = model.forward(batch.noisy, text: batchText, pooled: batchPooled, timesteps: batch.timesteps, checkpointing: checkpointing, compute: compute)
        let forward = seconds(since: forwardStart)
        let changed = zip(loop.lora.parameters, lora.parameters).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
        let best = records.min { $0.step < $1.step }!
        print(String(format: "  best step %.2f s: forward + backward %.2f s (a forward alone %.2f s), optimizer and draws %.3f s; "
                     + "largest LoRA change %.3g; peak RSS %.2f GB", best.step, best.gradients, forward, best.step - best.gradients,
                     changed, Double(peakResidentBytes()) / 1e9))
        guard json else { return }
        let object: [String: Any] = [
            "component": component.rawValue, "config": config.rawValue, "width": width, "height": height, "batch": prompts, "text_tokens": tokens,
            "rank": rank, "lora_modules": lora.modules.count, "lora_parameters": lora.parameterCounts.reduce(0, +),
            "precision": precision.rawValue, "lora_precision": "fp32", "checkpointing": checkpointing, "threads": threads,
            "warmup_steps": warmup, "timed_steps": records.map(\.step), "seconds_per_step": best.step,
            "forward_backward_seconds": best.gradients, "forward_seconds": forward, "optimizer_and_draws_seconds": best.step - best.gradients,
            "losses": records.map { Double($0.loss) }, "lora_max_abs_change": Double(changed), "setup_seconds": setup,
            "peak_rss_bytes": peakResidentBytes(), "kernels_isa": InstructionSet.kernels, "onednn_isa": OneDNNBackend.instructionSet,
            "engine": "sd3",
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
