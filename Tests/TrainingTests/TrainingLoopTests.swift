import Foundation
import SafeTensors
import SD3
import Tensors
import Testing
@testable import Training

/// Whole optimizer steps of the script's loop on a stand-in model (scripts/fixtures/lora_loop.py): data order,
/// posterior samples, noise, σ, loss, accumulation with accelerate's end-of-epoch sync, clipping, AdamW, lr.
@Suite struct TrainingLoopTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_loop", withExtension: "safetensors")!.path)
    static let (channels, positions) = (4, 16)

    static func values(_ name: String) -> [Float] { try! reference.tensor(name).data }

    /// The fixture's transformer stand-in, per latent position: pred = ((W + s·B·A)·x + b)·(t / 1000); its LoRA
    /// gradients by hand.
    static func gradients(case name: String) -> TrainingLoop.Gradients {
        let weight = values("\(name).base.weight"), bias = values("\(name).base.bias")
        let (c, p) = (channels, positions)
        return { lora, batch in
            let r = lora.rank, s = Double(lora.scale), a = lora.modules[0].down, bMatrix = lora.modules[0].up
            let count = batch.examples.count
            var prediction = [Float](repeating: 0, count: count * c * p)
            for b in 0..<count {
                let t = Double(batch.timesteps[b]) / 1000
                for q in 0..<p {
                    let x = (0..<c).map { Double(batch.noisy.data[(b * c + $0) * p + q]) }
                    let h = (0..<r).map { k in (0..<c).reduce(0.0) { $0 + Double(a[k * c + $1]) * x[$1] } }
                    for o in 0..<c {
                        var y = Double(bias[o]) + (0..<c).reduce(0.0) { $0 + Double(weight[o * c + $1]) * x[$1] }
                        y += s * (0..<r).reduce(0.0) { $0 + Double(bMatrix[o * r + $1]) * h[$1] }
                        prediction[(b * c + o) * p + q] = Float(y * t)
                    }
                }
            }
            let (loss, upstreamTensor) = batch.lossAndGradient(prediction: Tensor(shape: batch.noisy.shape, data: prediction))
            let upstream = upstreamTensor.data
            var dA = [Double](repeating: 0, count: r * c), dB = [Double](repeating: 0, count: c * r)
            for b in 0..<count {
                let t = Double(batch.timesteps[b]) / 1000
                for q in 0..<p {
                    let x = (0..<c).map { Double(batch.noisy.data[(b * c + $0) * p + q]) }
                    let g = (0..<c).map { Double(upstream[(b * c + $0) * p + q]) * t }
                    let h = (0..<r).map { k in (0..<c).reduce(0.0) { $0 + Double(a[k * c + $1]) * x[$1] } }
                    for k in 0..<r {
                        for o in 0..<c { dB[o * r + k] += s * g[o] * h[k] }
                        let dh = s * (0..<c).reduce(0.0) { $0 + Double(bMatrix[$1 * r + k]) * g[$1] }
                        for i in 0..<c { dA[k * c + i] += dh * x[i] }
                    }
                }
            }
            return (loss, [dA.map { Float($0) }, dB.map { Float($0) }])
        }
    }

    static func loop(case index: Int, _ c: [String: Any]) throws -> TrainingLoop {
        let name = "case\(index)", rank = c["rank"] as! Int, steps = c["steps"] as! Int
        var generator = TorchCPUGenerator(seed: UInt64(c["seed"] as! Int))
        let lora = try TrainableLora(rank: rank, alpha: Double(rank), targets: ["proj"], linears: [("proj", channels, channels)], generator: &generator)
        #expect(lora.modules[0].down == values("\(name).initial.A") && lora.modules[0].up == values("\(name).initial.B"), "\(name): initial LoRA")
        let scheme = WeightingScheme(rawValue: c["scheme"] as! String)!
        var settings = TrainingSettings(maxTrainSteps: steps,
                                        schedule: .init(kind: .init(rawValue: c["scheduler"] as! String)!, baseLR: c["lr"] as! Double,
                                                        warmupSteps: c["warmup"] as! Int, trainingSteps: steps),
                                        shiftFactor: Float(reference.metadata["shift"]!)!, scalingFactor: Float(reference.metadata["scale"]!)!)
        (settings.batchSize, settings.accumulationSteps) = (c["batch"] as! Int, c["accumulation"] as! Int)
        settings.density = TimestepDensity(scheme: scheme)
        settings.preconditionOutputs = true
        let n = c["n"] as! Int, per = channels * positions
        let means = values("\(name).means"), logvars = values("\(name).logvars")
        let posteriors = (0..<n).map { LatentPosterior(shape: [channels, 4, 4], mean: Array(means[$0 * per..<($0 + 1) * per]), logvar: Array(logvars[$0 * per..<($0 + 1) * per])) }
        return TrainingLoop(settings: settings, sigmaSchedule: try TrainingSchedule(config: .init(shift: 3.0)), posteriors: posteriors,
                            lora: lora, generator: generator)
    }

    static func relative(_ a: [Float], _ b: [Float]) -> Double {
        let num = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        let den = b.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        return den == 0 ? num : num / den
    }

    @Test func stepsMatchTheScript() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        var worst = (lora: 0.0, loss: 0.0)
        for (index, c) in cases.enumerated() {
            let name = "case\(index)"
            var loop = try Self.loop(case: index, c)
            #expect(loop.epochs == c["epochs"] as! Int)
            var micro = 0
            let gradients = Self.gradients(case: name)
            while !loop.isFinished {
                let step = loop.step
                let report = try loop.runStep(gradients)
                for (batch, loss) in zip(report.microBatches, report.losses) {
                    #expect(batch.examples == (try Self.reference.integers("\(name).micro\(micro).examples")).values, "\(name) micro \(micro): examples")
                    #expect(batch.sigmas == Self.values("\(name).micro\(micro).sigmas"), "\(name) micro \(micro): sigmas")
                    let expected = Self.values("\(name).micro\(micro).loss")[0]
                    worst.loss = max(worst.loss, abs(Double(loss - expected)) / Double(abs(expected)))
                    micro += 1
                }
                let a = Self.relative(loop.lora.modules[0].down, Self.values("\(name).step\(step).A"))
                let b = Self.relative(loop.lora.modules[0].up, Self.values("\(name).step\(step).B"))
                #expect(a <= 1e-6 && b <= 1e-6, "\(name) step \(step): A \(a), B \(b)")
                worst.lora = max(worst.lora, a, b)
            }
            #expect(micro == c["micro"] as! Int)
        }
        #expect(worst.loss <= 1e-5)
        print("TrainingLoopTests: worst relative error: LoRA weights \(worst.lora), loss \(worst.loss)")
    }

    /// A run stopped after step 3 (mid-epoch) and resumed from its checkpoint ends where the uninterrupted run ends.
    @Test func resumedRunEqualsUninterrupted() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        let gradients = Self.gradients(case: "case1")
        var whole = try Self.loop(case: 1, cases[1])
        while !whole.isFinished { _ = try whole.runStep(gradients) }
        var first = try Self.loop(case: 1, cases[1])
        for _ in 0..<3 { _ = try first.runStep(gradients) }
        #expect(first.batchInEpoch != 0 && !first.epochOrder.isEmpty)
        let path = LoraOutputTests.folder("loop") + "/checkpoint.safetensors"
        try first.checkpoint(modelName: "stand-in", modelFingerprint: "f00d").write(to: path, lora: first.lora, optimizer: first.optimizer)
        var resumed = try Self.loop(case: 1, cases[1])
        try resumed.restore(try TrainingCheckpoint.read(path, modelName: "stand-in", modelFingerprint: "f00d", rank: 2, alpha: 2), path: path)
        while !resumed.isFinished { _ = try resumed.runStep(gradients) }
        #expect(resumed.lora == whole.lora && resumed.optimizer == whole.optimizer && resumed.generator.snapshot == whole.generator.snapshot)
        // Another lr or accumulation is refused in one line.
        var changed = try Self.loop(case: 1, cases[1])
        let loaded = try TrainingCheckpoint.read(path, modelName: "stand-in", modelFingerprint: "f00d", rank: 2, alpha: 2)
        var settings = changed.settings
        settings.schedule.baseLR = 0.5
        changed = TrainingLoop(settings: settings, sigmaSchedule: changed.sigmaSchedule, posteriors: changed.posteriors, lora: changed.lora,
                               generator: changed.generator)
        #expect(throws: TrainingError.checkpoint(path: path, reason: "the learning rate was 0.02; this run has 0.5")) {
            try changed.restore(loaded, path: path)
        }
    }
}
