import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// FlashFlowMatchEulerDiscreteScheduler against the port of initml/diffusers' scheduler in
/// scripts/fixtures/flash_scheduler.py: sigmas bit for bit, latents after every step ≤ 1e-5, the re-noise drawn
/// from the run's generator after the starting latents; and one tiny-pipeline run against diffusers with it.
@Suite struct FlashSchedulerTests {
    static let reference = try! SafeTensorsFile(path: TransformerTests.fixtures + "/flash_scheduler.safetensors")
    nonisolated(unsafe) static let cases = try! JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[String: Any]]

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    @Test func coversOneToEightSteps() {
        #expect(Set(Self.cases.map { $0["steps"] as! Int }).isSuperset(of: 1...8))
    }

    @Test func sigmasAndTimestepsAreBitExact() throws {
        for c in Self.cases {
            let name = c["name"] as! String, steps = c["steps"] as! Int
            var scheduler = try FlashFlowMatchEulerDiscreteScheduler(shift: (c["shift"] as! NSNumber).doubleValue)
            try scheduler.setTimesteps(steps)
            #expect(scheduler.sigmaMin == Double(c["sigma_min"] as! String)!, "\(name): sigma_min")
            #expect(scheduler.sigmaMax == Double(c["sigma_max"] as! String)!, "\(name): sigma_max")
            #expect(scheduler.sigmas == (try Self.reference.tensor(name + ".sigmas")).data, "\(name): sigmas \(scheduler.sigmas)")
            #expect(scheduler.timesteps == (try Self.reference.tensor(name + ".timesteps")).data, "\(name): timesteps")
        }
    }

    @Test func stepsMatchThePort() throws {
        for c in Self.cases {
            let name = c["name"] as! String, steps = c["steps"] as! Int
            var scheduler = try FlashFlowMatchEulerDiscreteScheduler(shift: (c["shift"] as! NSNumber).doubleValue)
            try scheduler.setTimesteps(steps)
            var generator = TorchCPUGenerator(seed: UInt64(c["seed"] as! String)!)
            let start = try Self.reference.tensor(name + ".start")
            var latents = generator.randn(start.shape)
            #expect(latents == start.data, "\(name): starting latents")
            let velocities = try Self.reference.tensor(name + ".velocities")
            let size = start.count
            for i in 0..<steps {
                let velocity = Array(velocities.data[i * size..<(i + 1) * size])
                latents = scheduler.step(velocity, sample: latents, index: i, shape: start.shape, generator: &generator)
                let expected = try Self.reference.tensor("\(name).after\(i)")
                let error = Self.maxDifference(latents, expected.data)
                #expect(error <= 1e-5, "\(name): step \(i) max abs error \(error), first \(latents.prefix(3)) vs \(expected.data.prefix(3))")
            }
        }
    }

    /// The last step returns x0 = x − σ·v and draws nothing; the others draw exactly one latent-sized tensor.
    @Test func lastStepReturnsThePredictionWithoutDrawing() throws {
        var scheduler = try FlashFlowMatchEulerDiscreteScheduler(shift: 3)
        try scheduler.setTimesteps(4)
        let shape = [1, 16, 2, 2]
        let sample = (0..<64).map { Float($0) / 10 }, velocity = (0..<64).map { Float(64 - $0) / 7 }
        var generator = TorchCPUGenerator(seed: 9), untouched = generator
        let last = scheduler.step(velocity, sample: sample, index: 3, shape: shape, generator: &generator)
        #expect(last == zip(sample, velocity).map { $0 - $1 * scheduler.sigmas[3] })
        #expect(generator.randn([4]) == untouched.randn([4]))
        var drawn = TorchCPUGenerator(seed: 9)
        _ = scheduler.step(velocity, sample: sample, index: 0, shape: shape, generator: &drawn)
        var skipped = TorchCPUGenerator(seed: 9)
        _ = skipped.randn(shape)
        #expect(drawn.randn([20]) == skipped.randn([20]))
    }

    @Test func badSettingsAreRejected() throws {
        #expect(throws: SchedulerError.self) { try FlashFlowMatchEulerDiscreteScheduler(shift: 0) }
        #expect(throws: SchedulerError.self) { try FlashFlowMatchEulerDiscreteScheduler(numTrainTimesteps: 1, shift: 3) }
        var scheduler = try FlashFlowMatchEulerDiscreteScheduler(shift: 3)
        #expect(throws: SchedulerError.invalidSteps(0)) { try scheduler.setTimesteps(0) }
    }

    /// diffusers' StableDiffusion3Pipeline with the ported scheduler, torch.manual_seed(seed) and generator=None, on
    /// tiny-sd3 without guidance: final latents within the fp32 limit, ≥ 45 dB.
    @Test func pipelineMatchesDiffusers() throws {
        let run = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["pipeline"]!.utf8)) as! [String: Any]
        var options = LoadOptions()
        (options.backend, options.threads) = (.oneDNN, 2)
        let pipeline = try StableDiffusion3Pipeline(path: PipelineTests.fixtures + "/tiny-sd3", options: options)
        var p = GenerationParameters(prompt: run["prompt"] as! String)
        (p.width, p.height, p.steps) = (run["width"] as! Int, run["height"] as! Int, run["steps"] as! Int)
        p.guidanceScale = (run["guidance"] as! NSNumber).doubleValue
        p.seed = UInt64(run["seed"] as! Int)
        p.maxSequenceLength = 77
        p.scheduler = .flash
        var latents: Tensor?
        let image = try pipeline.generate(p, onStep: { step in if step.index + 1 == step.total { latents = step.latents } })
        let limit = try PipelineTests.latentLimit(pipeline, p, textTokens: 77)
        let (error, allowed) = limit.check(try #require(latents), try Self.reference.tensor("pipeline.latents"))
        #expect(error <= allowed, "flash pipeline: latents max abs error \(error) > \(allowed)")
        let pixels = Array(Self.reference.bytes(try #require(Self.reference.info("pipeline.image"))))
        let psnr = PipelineTests.psnr(image.pixels, pixels)
        #expect(psnr >= 45, "flash pipeline: PSNR \(psnr) dB")
        p.scheduler = .euler
        let euler = try pipeline.generate(p)
        #expect(PipelineTests.psnr(euler.pixels, pixels) < 45, "the Euler scheduler's image is not the flash one")
    }
}
