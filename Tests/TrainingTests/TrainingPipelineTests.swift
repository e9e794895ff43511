import Foundation
import ImageIO
import SafeTensors
import SD3
import Tensors
import Testing
@testable import Training

/// The pieces together as `sd3 train-lora` joins them, on the tiny SD3 pipeline: a data folder, the VAE's posteriors,
/// the loop on TrainableSD3Transformer, a checkpoint and a resume, the LoRA file loaded back by our own loader.
@Suite struct TrainingPipelineTests {
    @Test func folderToLoraFile() throws {
        let tiny = URL(fileURLWithPath: TrainingStepsTests.transformerFolder).deletingLastPathComponent().path
        let data = LoraOutputTests.folder("pipeline-data")
        for (i, size) in [(40, 32), (32, 48), (64, 64)].enumerated() {
            FileManager.default.createFile(atPath: data + "/img\(i).png", contents: Data(try PNGFile.encode(TrainingDataTests.image(size.0, size.1))))
            FileManager.default.createFile(atPath: data + "/img\(i).txt", contents: Data("a photo number \(i)".utf8))
        }
        let examples = try TrainingData(folder: data, resolution: 32, instancePrompt: nil)
        let compute = try Compute(backend: .oneDNN, threads: 2)
        let vaeFolder = try ComponentFolder(tiny + "/vae")
        let vaeConfig = try vaeFolder.config(AutoencoderKLConfig.self)
        let vae = try AutoencoderKL(config: vaeConfig, weights: try vaeFolder.weights(), precision: .fp32)
        let pixels = Tensor(shape: [examples.examples.count, 3, 32, 32], data: examples.examples.flatMap(\.pixels))
        let (mean, logvar) = try vae.encode(pixels, compute: compute)
        let posteriors = LatentPosterior.split(mean: mean, logvar: logvar)
        #expect(posteriors.count == 3)

        let folder = try ComponentFolder(tiny + "/transformer")
        let config = try folder.config(SD3TransformerConfig.self)
        var generator = TorchCPUGenerator(seed: 7)
        let lora = try TrainableLora(rank: 4, alpha: 4, targets: TrainableLora.defaultTargets,
                                     linears: TransformerLinears.list(try SafeTensorsFile(path: LoraOutputTests.transformerPath)), generator: &generator)
        let parameters = lora.makeParameters()
        let model = try TrainableSD3Transformer(config: config, weights: try folder.weights(), precision: .fp32, loras: parameters)
        var prompts = TorchCPUGenerator(seed: 99)
        let gradients = TransformerGradients(model: model, parameters: parameters, compute: compute, checkpointing: true,
                                             text: (0..<3).map { _ in Tensor(shape: [5, config.jointAttentionDim], data: prompts.randn([5 * config.jointAttentionDim])) },
                                             pooled: (0..<3).map { _ in Tensor(shape: [config.pooledProjectionDim], data: prompts.randn([config.pooledProjectionDim])) })
        let settings = TrainingSettings(maxTrainSteps: 6, schedule: .init(kind: .constant, baseLR: 1e-2, trainingSteps: 6),
                                        shiftFactor: vaeConfig.shiftFactor ?? 0, scalingFactor: vaeConfig.scalingFactor)
        func fresh() -> TrainingLoop {
            TrainingLoop(settings: settings, sigmaSchedule: try! TrainingSchedule(config: .init(shift: 3.0)), posteriors: posteriors,
                         lora: lora, generator: generator)
        }
        var whole = fresh()
        var losses: [Float] = []
        while !whole.isFinished { losses.append(try whole.runStep { try gradients($0, $1) }.loss) }
        #expect(losses.count == 6 && losses.allSatisfy(\.isFinite))
        #expect(whole.lora.modules.contains { $0.up.contains { $0 != 0 } })

        let out = LoraOutputTests.folder("pipeline-out")
        var first = fresh()
        for _ in 0..<4 { _ = try first.runStep { try gradients($0, $1) } }
        try first.checkpoint(modelName: "tiny-sd3", modelFingerprint: "tiny").write(to: out + "/checkpoint.safetensors", lora: first.lora, optimizer: first.optimizer)
        var resumed = fresh()
        try resumed.restore(try TrainingCheckpoint.read(out + "/checkpoint.safetensors", modelName: "tiny-sd3", modelFingerprint: "tiny", rank: 4, alpha: 4),
                            path: out + "/checkpoint.safetensors")
        while !resumed.isFinished { _ = try resumed.runStep { try gradients($0, $1) } }
        #expect(resumed.lora == whole.lora)

        try resumed.lora.write(to: out + "/trained.safetensors")
        let loaded = try LoraFile(path: out + "/trained.safetensors")
        #expect(loaded.pairs[.transformer]?.count == resumed.lora.modules.count)
        print("TrainingPipelineTests: losses \(losses)")
    }
}
