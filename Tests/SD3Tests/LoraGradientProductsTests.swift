import Foundation
import SafeTensors
import SD3
import Tensors
import Testing
import Training

/// A bf16 base with bf16 products (`TrainableSD3Transformer(products: .bf16)`: activations rounded to bf16 as torch's
/// autocast, the attention's bf16 kernels where the CPU has them) against the fp32 torch reference of
/// LoraGradientTests, beside the default fp32 products on the same bf16 weights.
@Suite struct LoraGradientProductsTests {
    static func gradients(products: OperandType) throws -> [Double] {
        let c = LoraGradientTests.cases.first { $0.name == "sd35_more" }!
        let folder = try ComponentFolder(LoraGradientTests.fixtures + "/" + c.model)
        let loras = try LoraGradientTests.loras(c.name)
        let model = try TrainableSD3Transformer(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(),
                                                precision: .bf16, products: products, loras: loras)
        let compute = try Compute(backend: .oneDNN, threads: 2)
        let r = LoraGradientTests.reference
        let (latents, noise, sigmas) = (try r.tensor("latents"), try r.tensor("noise"), try r.tensor("sigmas").data)
        let noisy = FlowMatchingLoss.noisy(latents: latents, noise: noise, sigmas: sigmas)
        let (pred, tape) = model.forward(noisy, text: try r.tensor("text"), pooled: try r.tensor("pooled"),
                                         timesteps: try r.tensor("timesteps").data, checkpointing: true, compute: compute)
        let loss = FlowMatchingLoss(weighting: LossWeighting(rawValue: c.weighting) ?? .none, preconditionOutputs: c.precondition != 0)
        model.backward(tape, gradient: loss(prediction: pred, latents: latents, noise: noise, sigmas: sigmas).gradient, compute: compute)
        return try loras.modules.sorted { $0.key < $1.key }.flatMap { name, module in
            [LoraGradientTests.relative(module.gradDown.data, try r.tensor("\(c.name).\(name).lora_A.grad").data),
             LoraGradientTests.relative(module.gradUp.data, try r.tensor("\(c.name).\(name).lora_B.grad").data)]
        }
    }

    /// Both stay within bf16's rounding of the fp32 reference (the bound of bf16BaseStaysNearTheReference), and bf16
    /// products move the gradients further from it than fp32 products on the same weights (they really ran).
    @Test func bf16ProductsStayNearTheReference() throws {
        let (fp32, bf16) = (try Self.gradients(products: .fp32).max()!, try Self.gradients(products: .bf16).max()!)
        print("sd35_more bf16 base: worst gradient relative error, fp32 products \(fp32), bf16 products \(bf16)")
        #expect(bf16 <= 5e-2 && fp32 <= 5e-2, "worst gradient relative error: fp32 products \(fp32), bf16 products \(bf16)")
        #expect(bf16 > fp32, "bf16 products (\(bf16)) are no further from the fp32 reference than fp32 products (\(fp32))")
    }
}
