import Foundation
import SafeTensors
import SD3
import Tensors
import Testing
import Training

/// LoRA gradients of the DreamBooth-LoRA SD3 script's loss against torch autograd (scripts/fixtures/lora_grad.py):
/// tiny SD3 and SD3.5-style (qk-norm, dual attention) MMDiTs, the script's default target modules and more (every
/// kind of linear, the patch-embedding conv), three loss weightings, with and without preconditioned outputs; with
/// gradient checkpointing on and off. Loss ≤ 1e-5 relative, each A and B gradient ‖ours − ref‖/‖ref‖ ≤ 1e-4.
@Suite struct LoraGradientTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let reference = try! SafeTensorsFile(path: fixtures + "/lora-grad/reference.safetensors")

    struct Case: Decodable {
        let name: String, model: String, weighting: String, precondition: Int
        enum CodingKeys: String, CodingKey { case name = "case", model, weighting, precondition = "precondition_outputs" }
    }

    static let cases: [Case] = try! JSONDecoder().decode([Case].self, from: Data(reference.metadata["cases"]!.utf8))

    /// The case's LoRA at its initial values, read back from the reference in peft's layout.
    static func loras(_ name: String) throws -> LoraParameters {
        var tensors = [String: Tensor]()
        for key in reference.names where key.hasPrefix(name + ".") && key.hasSuffix(".weight") && key.contains(".lora_") {
            tensors[String(key.dropFirst(name.count + 1))] = try reference.tensor(key)
        }
        return try LoraParameters(peft: tensors, alpha: 4)
    }

    static func relative(_ actual: [Float], _ expected: [Float]) -> Double {
        let difference = zip(actual, expected).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let norm = expected.reduce(0.0) { $0 + Double($1) * Double($1) }
        return (difference / max(norm, .leastNormalMagnitude)).squareRoot()
    }

    /// Loss and the relative error of every pair's gradients for one case.
    static func run(_ c: Case, checkpointing: Bool, backend: BackendKind, precision: Precision = .fp32) throws
        -> (loss: Float, pred: Tensor, errors: [(String, Double)], gradients: [[Float]]) {
        let folder = try ComponentFolder(fixtures + "/" + c.model)
        let loras = try loras(c.name)
        let model = try TrainableSD3Transformer(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(),
                                                precision: precision, loras: loras)
        let compute = try Compute(backend: backend, threads: 2)
        let r = reference
        let (latents, noise, sigmas) = (try r.tensor("latents"), try r.tensor("noise"), try r.tensor("sigmas").data)
        let noisy = FlowMatchingLoss.noisy(latents: latents, noise: noise, sigmas: sigmas)
        let (pred, tape) = model.forward(noisy, text: try r.tensor("text"), pooled: try r.tensor("pooled"),
                                         timesteps: try r.tensor("timesteps").data, checkpointing: checkpointing, compute: compute)
        let loss = FlowMatchingLoss(weighting: LossWeighting(rawValue: c.weighting) ?? .none, preconditionOutputs: c.precondition != 0)
        let (value, gradient) = loss(prediction: pred, latents: latents, noise: noise, sigmas: sigmas)
        model.backward(tape, gradient: gradient, compute: compute)
        var errors = [(String, Double)](), gradients = [[Float]]()
        for (name, module) in loras.modules.sorted(by: { $0.key < $1.key }) {
            errors.append((name + ".lora_A", relative(module.gradDown.data, try r.tensor("\(c.name).\(name).lora_A.grad").data)))
            errors.append((name + ".lora_B", relative(module.gradUp.data, try r.tensor("\(c.name).\(name).lora_B.grad").data)))
            gradients += [module.gradDown.data, module.gradUp.data]
        }
        return (value, pred, errors, gradients)
    }

    @Test(arguments: cases.map(\.name), [false, true])
    func gradientsMatchTorchAutograd(name: String, checkpointing: Bool) throws {
        let c = Self.cases.first { $0.name == name }!
        let (loss, pred, errors, _) = try Self.run(c, checkpointing: checkpointing, backend: .oneDNN)
        let expectedLoss = try Self.reference.tensor("\(name).loss").data[0]
        let lossError = abs(Double(loss) - Double(expectedLoss)) / abs(Double(expectedLoss))
        #expect(lossError <= 1e-5, "\(name): loss \(loss) vs \(expectedLoss) (relative \(lossError))")
        let predError = Self.relative(pred.data, try Self.reference.tensor("\(name).pred").data)
        #expect(predError <= 1e-5, "\(name): transformer output relative error \(predError)")
        let worst = errors.max { $0.1 < $1.1 }!
        print("\(name) checkpointing \(checkpointing): loss rel \(lossError), pred rel \(predError), \(errors.count) gradients, worst \(worst.0) \(worst.1)")
        for (module, error) in errors {
            #expect(error <= 1e-4, "\(name): \(module) gradient relative error \(error)")
        }
    }

    /// Checkpointing recomputes the same products in the same order: the gradients are bit for bit those without it.
    @Test func checkpointingChangesNoBits() throws {
        let c = Self.cases.first { $0.name == "sd35_more" }!
        let on = try Self.run(c, checkpointing: true, backend: .openBLAS), off = try Self.run(c, checkpointing: false, backend: .openBLAS)
        #expect(on.loss == off.loss)
        #expect(on.gradients == off.gradients)
    }

    /// A bf16 base (the training default at real size) runs the same backward with bf16 products: its gradients stay
    /// within bf16's rounding of the fp32 reference (2⁻⁸ relative per product, a few products deep), and are not the
    /// fp32 ones (the weights really are rounded).
    @Test func bf16BaseStaysNearTheReference() throws {
        let c = Self.cases.first { $0.name == "sd35_more" }!
        let run = try Self.run(c, checkpointing: true, backend: .oneDNN, precision: .bf16)
        let worst = run.errors.map(\.1).max()!
        print("sd35_more bf16 base: worst gradient relative error \(worst)")
        #expect(worst <= 5e-2 && worst > 1e-4, "bf16 base: worst gradient relative error \(worst)")
    }

    /// The limit catches a small error: a LoRA scale off by 1 % in one pair (as a wrong alpha/rank would give) fails it.
    @Test func limitCatchesAWrongScale() throws {
        let c = Self.cases.first { $0.name == "sd3_default" }!
        var tensors = [String: Tensor]()
        for key in Self.reference.names where key.hasPrefix(c.name + ".") && key.hasSuffix(".weight") && key.contains(".lora_") {
            tensors[String(key.dropFirst(c.name.count + 1))] = try Self.reference.tensor(key)
        }
        let key = "transformer_blocks.0.attn.to_q.lora_B.weight"
        tensors[key] = Tensor(shape: tensors[key]!.shape, data: tensors[key]!.data.map { $0 * 1.01 })
        let loras = try LoraParameters(peft: tensors, alpha: 4)
        let folder = try ComponentFolder(Self.fixtures + "/" + c.model)
        let model = try TrainableSD3Transformer(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(), loras: loras)
        let compute = try Compute(backend: .openBLAS, threads: 2)
        let r = Self.reference
        let (latents, noise, sigmas) = (try r.tensor("latents"), try r.tensor("noise"), try r.tensor("sigmas").data)
        let (pred, tape) = model.forward(FlowMatchingLoss.noisy(latents: latents, noise: noise, sigmas: sigmas), text: try r.tensor("text"),
                                         pooled: try r.tensor("pooled"), timesteps: try r.tensor("timesteps").data, checkpointing: true, compute: compute)
        let (_, gradient) = FlowMatchingLoss()(prediction: pred, latents: latents, noise: noise, sigmas: sigmas)
        model.backward(tape, gradient: gradient, compute: compute)
        let a = loras.modules["transformer_blocks.0.attn.to_q"]!.gradDown.data
        #expect(Self.relative(a, try r.tensor("\(c.name).transformer_blocks.0.attn.to_q.lora_A.grad").data) > 1e-4)
    }

    @Test func unknownModuleIsRefused() throws {
        let folder = try ComponentFolder(Self.fixtures + "/tiny-sd3/transformer")
        let loras = LoraParameters(modules: ["transformer_blocks.0.attn.to_qq": LoraModule(down: Tensor(zeros: [4, 32]), up: Tensor(zeros: [32, 4]), scale: 1)])
        #expect(throws: LoraTrainingError.matchesNoLayer(module: "transformer_blocks.0.attn.to_qq")) {
            try TrainableSD3Transformer(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(), loras: loras)
        }
        let wrong = LoraParameters(modules: ["proj_out": LoraModule(down: Tensor(zeros: [4, 32]), up: Tensor(zeros: [32, 4]), scale: 1)])
        #expect(throws: LoraTrainingError.shapeMismatch(module: "proj_out", layer: [64, 32], lora: [32, 32])) {
            try TrainableSD3Transformer(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(), loras: wrong)
        }
    }
}
