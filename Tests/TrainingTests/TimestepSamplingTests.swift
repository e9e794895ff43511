import Foundation
import SafeTensors
import SD3
import Tensors
import Testing
@testable import Training

/// One step of train_dreambooth_lora_sd3.py's noise → u → timestep → σ → x_t → loss (scripts/fixtures/lora_timesteps.py,
/// diffusers 0.42.1, torch 2.15 on x86-64), on torch's global CPU generator.
@Suite struct TimestepSamplingTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_timesteps", withExtension: "safetensors")!.path)
    static let schedule = try! TrainingSchedule(config: .init(shift: 3.0))

    static func values(_ name: String) -> [Float] { try! reference.tensor(name).data }

    static func relative(_ a: [Float], _ b: [Float]) -> Double {
        let num = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        let den = b.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        return den == 0 ? num : num / den
    }

    @Test func trainingScheduleIsTheConstructors() {
        #expect(Self.schedule.timesteps == Self.values("schedule.timesteps"))
        #expect(Self.schedule.sigmas == Self.values("schedule.sigmas"))
    }

    @Test func stepMatchesTheScript() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        #expect(cases.count == 65)
        var worstLoss = 0.0, worstGradient = 0.0, worstWeight = 0
        for (index, c) in cases.enumerated() {
            let name = "case\(index)", batch = c["batch"] as! Int, seed = UInt64(c["seed"] as! Int)
            let scheme = WeightingScheme(rawValue: c["scheme"] as! String)!
            let label = "\(name) \(scheme.rawValue) seed \(seed) batch \(batch)"
            var generator = TorchCPUGenerator(seed: seed)
            let per = 64
            let x0 = generator.randn([batch, 4, 4, 4]).map { $0 * 0.8 }
            let prediction = generator.randn([batch, 4, 4, 4])
            let noise = generator.randn([batch, 4, 4, 4])
            #expect(x0 == Self.values("\(name).model_input") && noise == Self.values("\(name).noise"), "\(label): latents or noise")
            let density = TimestepDensity(scheme: scheme, logitMean: c["logit_mean"] as! Double, logitStd: c["logit_std"] as! Double,
                                          modeScale: c["mode_scale"] as! Double)
            let u = density.sample(batchSize: batch, generator: &generator)
            let expectedU = Self.values("\(name).u")
            if scheme == .mode {
                // torch's cos is MKL's (see cosIsWithinAnUlpOfTorchs): a few ulps of u; the indices below still agree.
                let ulps = zip(u, expectedU).map { abs(Int($0.bitPattern) - Int($1.bitPattern)) }
                #expect(ulps.allSatisfy { $0 <= 4 }, "\(label): u \(u) vs \(expectedU)")
            } else {
                #expect(u == expectedU, "\(label): u \(u) vs \(expectedU)")
            }
            let draws = u.map { Self.schedule.draw(u: $0) }
            #expect(draws.map(\.index) == (try Self.reference.integers("\(name).indices")).values, "\(label): indices")
            #expect(draws.map(\.timestep) == Self.values("\(name).timesteps"), "\(label): timesteps")
            let sigmas = draws.map(\.sigma)
            #expect(sigmas == Self.values("\(name).sigmas"), "\(label): sigmas")
            let weights = sigmas.map { scheme.lossWeighting.weight(sigma: $0) }, expectedWeights = Self.values("\(name).weighting")
            worstWeight = max(worstWeight, zip(weights, expectedWeights).map { abs(Int($0.bitPattern) - Int($1.bitPattern)) }.max()!)
            let shape = [batch, 4, 4, 4]
            let (latents, noiseTensor) = (Tensor(shape: shape, data: x0), Tensor(shape: shape, data: noise))
            let noisy = FlowMatchingLoss.noisy(latents: latents, noise: noiseTensor, sigmas: sigmas)
            #expect(noisy.data == Self.values("\(name).noisy"), "\(label): x_t")
            let loss = FlowMatchingLoss(weighting: scheme.lossWeighting, preconditionOutputs: (c["precondition"] as! Int) == 1)
            let (value, gradientTensor) = loss(prediction: Tensor(shape: shape, data: prediction), latents: latents, noise: noiseTensor, sigmas: sigmas)
            let gradient = gradientTensor.data
            let expected = Self.values("\(name).loss")[0]
            worstLoss = max(worstLoss, abs(Double(value - expected)) / Double(abs(expected)))
            worstGradient = max(worstGradient, Self.relative(gradient, Self.values("\(name).grad")))
            // The generator's state after the step: the next draws agree.
            #expect(generator.randn([5]) == Self.values("\(name).after"), "\(label): generator state after the step")
            #expect(per * batch == x0.count)
        }
        #expect(worstWeight == 0, "weights differ by \(worstWeight) ulps")
        #expect(worstLoss <= 1e-6, "loss relative error \(worstLoss)")
        #expect(worstGradient <= 1e-6, "gradient relative error \(worstGradient)")
        print("TimestepSamplingTests: worst loss rel. error \(worstLoss), worst d loss/d pred rel. error \(worstGradient)")
    }

    /// torch.cos on float32 CPU tensors goes through MKL's vsCos: glibc's cosf is within 1 ulp of it on [0, π/2]
    /// (scripts/fixtures/lora_timesteps.py, 4097 points and a few beyond).
    @Test func cosIsWithinAnUlpOfTorchs() {
        let x = Self.values("cos.x"), expected = Self.values("cos.y")
        let ulps = zip(x.map { Foundation.cos($0) }, expected).map { abs(Int($0.bitPattern) - Int($1.bitPattern)) }
        #expect(ulps.max()! <= 1, "largest difference \(ulps.max()!) ulps")
        print("TimestepSamplingTests: glibc cosf differs from torch.cos on \(ulps.filter { $0 != 0 }.count) of \(x.count) points, by ≤ \(ulps.max()!) ulp")
    }

    @Test func indexClampsWhereTorchWouldRaise() {
        #expect(Self.schedule.index(u: 1) == 999)
        #expect(Self.schedule.index(u: 0.9999) == 999)
        #expect(Self.schedule.index(u: 0) == 0)
        #expect(Self.schedule.index(u: .nan) == 0)
    }
}
