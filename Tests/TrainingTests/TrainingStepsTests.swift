import Foundation
import SafeTensors
import SD3
import Tensors
import Testing
@testable import Training

/// Whole training runs of the script on the tiny SD3 and SD3.5-style transformers (scripts/fixtures/lora_train_steps.py): the LoRA's
/// peft initialisation, data order, noise, σ, the transformer's forward and backward (TrainableSD3Transformer),
/// accumulation, clipping, AdamW and the lr schedule; the LoRA after each saved step within 1e-4 of torch's.
@Suite struct TrainingStepsTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_train_steps", withExtension: "safetensors")!.path)
    static let transformerFolder = URL(fileURLWithPath: LoraOutputTests.transformerPath).deletingLastPathComponent().path

    static func values(_ name: String) -> [Float] { try! reference.tensor(name).data }

    @Test(arguments: [false, true])
    func runsMatchTheScript(checkpointing: Bool) throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        var worst = (lora: 0.0, loss: 0.0)
        for (index, c) in cases.enumerated() {
            let name = "case\(index)", rank = c["rank"] as! Int, steps = c["steps"] as! Int, n = c["n"] as! Int, latent = c["latent"] as! [Int]
            let folderPath = c["model"] as! String == "sd35"
                ? URL(fileURLWithPath: Self.transformerFolder).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("diffusers-dummy-sd35-transformer").path
                : Self.transformerFolder
            let folder = try ComponentFolder(folderPath)
            let linears = TransformerLinears.list(try SafeTensorsFile(path: folderPath + "/diffusion_pytorch_model.safetensors"))
            var generator = TorchCPUGenerator(seed: UInt64(c["seed"] as! Int))
            let lora = try TrainableLora(rank: rank, alpha: Double(rank), targets: TrainableLora.defaultTargets, linears: linears, generator: &generator)
            let parameters = lora.makeParameters()
            let model = try TrainableSD3Transformer(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(),
                                                    precision: .fp32, loras: parameters)
            let per = latent.reduce(1, *)
            let means = Self.values("\(name).means"), logvars = Self.values("\(name).logvars")
            let posteriors = (0..<n).map { LatentPosterior(shape: latent, mean: Array(means[$0 * per..<($0 + 1) * per]),
                                                           logvar: Array(logvars[$0 * per..<($0 + 1) * per])) }
            let text = try Self.reference.tensor("\(name).text"), pooled = try Self.reference.tensor("\(name).pooled")
            let (tokens, width) = (text.dim(1), text.dim(2))
            let gradients = TransformerGradients(model: model, parameters: parameters, compute: try Compute(backend: .oneDNN, threads: 2),
                                                 checkpointing: checkpointing,
                                                 text: (0..<n).map { Tensor(shape: [tokens, width], data: Array(text.data[$0 * tokens * width..<($0 + 1) * tokens * width])) },
                                                 pooled: (0..<n).map { Tensor(shape: [pooled.dim(1)], data: Array(pooled.data[$0 * pooled.dim(1)..<($0 + 1) * pooled.dim(1)])) })
            let scheme = WeightingScheme(rawValue: c["scheme"] as! String)!
            var settings = TrainingSettings(maxTrainSteps: steps,
                                            schedule: .init(kind: .init(rawValue: c["scheduler"] as! String)!, baseLR: c["lr"] as! Double,
                                                            warmupSteps: c["warmup"] as! Int, trainingSteps: steps),
                                            shiftFactor: Float(Self.reference.metadata["shift"]!)!, scalingFactor: Float(Self.reference.metadata["scale"]!)!)
            (settings.batchSize, settings.accumulationSteps, settings.density) = (c["batch"] as! Int, c["accumulation"] as! Int, TimestepDensity(scheme: scheme))
            var loop = TrainingLoop(settings: settings, sigmaSchedule: try TrainingSchedule(config: .init(shift: 3.0)), posteriors: posteriors,
                                    lora: lora, generator: generator)
            var micro = 0
            while !loop.isFinished {
                let step = loop.step
                let report = try loop.runStep { try gradients($0, $1) }
                for loss in report.losses {
                    let expected = Self.values("\(name).micro\(micro).loss")[0]
                    worst.loss = max(worst.loss, abs(Double(loss - expected)) / Double(abs(expected)))
                    micro += 1
                }
                guard Self.reference.info("\(name).step\(step).\(loop.lora.modules[0].name).lora_A.weight") != nil else { continue }
                for m in loop.lora.modules {
                    for (part, values) in [("lora_A", m.down), ("lora_B", m.up)] {
                        let e = TrainingLoopTests.relative(values, Self.values("\(name).step\(step).\(m.name).\(part).weight"))
                        #expect(e <= 1e-4, "\(name) step \(step) \(m.name).\(part): relative error \(e)")
                        worst.lora = max(worst.lora, e)
                    }
                }
            }
            #expect(micro == c["micro"] as! Int)
        }
        #expect(worst.loss <= 1e-5, "loss relative error \(worst.loss)")
        print("TrainingStepsTests (checkpointing \(checkpointing)): worst relative error: LoRA weights \(worst.lora), loss \(worst.loss)")
    }
}
