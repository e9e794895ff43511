import Foundation
import SafeTensors
import Testing
@testable import Training

/// Twenty optimizer steps of the script's update side (scripts/fixtures/lora_optim.py: accelerate's accumulate /
/// backward / clip_grad_norm_, torch.optim.AdamW, diffusers' get_scheduler; torch 2.15, accelerate 1.16).
@Suite struct OptimizerTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_optim", withExtension: "safetensors")!.path)

    static func values(_ name: String) -> [Float] { try! reference.tensor(name).data }

    static func double(_ name: String) -> Double {
        let info = reference.info(name)!
        return reference.bytes(info).load(as: Double.self)
    }

    static func relative(_ a: [Float], _ b: [Float]) -> Double {
        let num = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        let den = b.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        return den == 0 ? num : num / den
    }

    @Test func twentyStepsMatchTorch() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        let shapes = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["shapes"]!.utf8)) as! [[Int]]
        let steps = Int(Self.reference.metadata["steps"]!)!
        let counts = shapes.map { $0.reduce(1, *) }
        var worst = (parameter: 0.0, moment: 0.0, lr: 0.0, norm: 0.0)
        for (index, c) in cases.enumerated() {
            let name = "case\(index)", accumulation = c["accumulation"] as! Int
            let schedule = LearningRateSchedule(kind: .init(rawValue: c["scheduler"] as! String)!, baseLR: c["lr"] as! Double,
                                                warmupSteps: c["warmup"] as! Int, trainingSteps: steps)
            var parameters = counts.indices.map { Self.values("\(name).initial.\($0)") }
            var optimizer = AdamW(parameterCounts: counts)
            var accumulator = GradientAccumulator(steps: accumulation, parameterCounts: counts)
            var micro = 0
            for step in 0..<steps {
                var due = false
                while !due {
                    due = accumulator.add(counts.indices.map { Self.values("\(name).micro\(micro).grad.\($0)") })
                    micro += 1
                }
                var gradients = accumulator.take()
                let norm = clipGradientNorm(&gradients, maxNorm: 1.0)
                let lr = schedule.lr(at: step)
                optimizer.update(parameters: &parameters, gradients: gradients, lr: lr)
                let prefix = "\(name).step\(step)"
                let expectedLR = Self.double("\(prefix).lr"), expectedNorm = Self.double("\(prefix).norm")
                worst.lr = max(worst.lr, abs(lr - expectedLR) / max(abs(expectedLR), 1e-30))
                worst.norm = max(worst.norm, abs(norm - expectedNorm) / expectedNorm)
                for p in counts.indices {
                    let e = Self.relative(parameters[p], Self.values("\(prefix).param.\(p)"))
                    #expect(e <= 1e-6, "\(prefix) parameter \(p): relative error \(e)")
                    worst.parameter = max(worst.parameter, e)
                    worst.moment = max(worst.moment, Self.relative(optimizer.exp_avg[p], Self.values("\(prefix).exp_avg.\(p)")),
                                       Self.relative(optimizer.exp_avg_sq[p], Self.values("\(prefix).exp_avg_sq.\(p)")))
                }
            }
        }
        #expect(worst.lr <= 1e-15, "lr relative error \(worst.lr)")
        #expect(worst.norm <= 1e-6, "grad norm relative error \(worst.norm)")
        #expect(worst.moment <= 1e-6, "AdamW moments relative error \(worst.moment)")
        print("OptimizerTests: worst relative error: parameters \(worst.parameter), moments \(worst.moment), lr \(worst.lr), norm \(worst.norm)")
    }

    @Test func scheduleShapes() {
        let cosine = LearningRateSchedule(kind: .cosine, baseLR: 1, warmupSteps: 10, trainingSteps: 110)
        #expect(cosine.lr(at: 0) == 0 && cosine.lr(at: 5) == 0.5 && cosine.lr(at: 10) == 1)
        #expect(abs(cosine.lr(at: 60) - 0.5) < 1e-15 && cosine.lr(at: 110) == 0 && cosine.lr(at: 200) >= 0)
        let linear = LearningRateSchedule(kind: .linear, baseLR: 2, warmupSteps: 0, trainingSteps: 4)
        #expect([0, 1, 2, 3, 4, 5].map { linear.lr(at: $0) } == [2, 1.5, 1, 0.5, 0, 0])
    }

    @Test func clippingLeavesSmallGradientsAlone() {
        var small: [[Float]] = [[0.3, -0.4]]
        #expect(abs(clipGradientNorm(&small, maxNorm: 1) - 0.5) < 1e-7)
        #expect(small == [[0.3, -0.4]])
        var large: [[Float]] = [[3, 0], [0, 4]]
        clipGradientNorm(&large, maxNorm: 1)
        #expect(abs(large[0][0] - 0.6) < 1e-6 && abs(large[1][1] - 0.8) < 1e-6)
    }
}
