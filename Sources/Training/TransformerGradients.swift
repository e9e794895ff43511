import Foundation
import SD3
import Tensors

extension TrainableLora {
    /// The backward pass's view of this LoRA (LoraParameters: modules by name, gradients summed in place), for
    /// TrainableSD3Transformer, which keeps the module objects: `load(into:)` refreshes their A and B each step.
    public func makeParameters() -> LoraParameters {
        var modules = [String: LoraModule]()
        for m in self.modules {
            modules[m.name] = LoraModule(down: Tensor(shape: [rank, m.inFeatures], data: m.down),
                                         up: Tensor(shape: [m.outFeatures, rank], data: m.up), scale: scale)
        }
        return LoraParameters(modules: modules)
    }

    /// Copies the current A and B into `parameters` (made by makeParameters) and zeroes their gradients.
    public func load(into parameters: LoraParameters) {
        for m in modules {
            guard let module = parameters.modules[m.name] else { preconditionFailure("LoraParameters lacks \(m.name)") }
            module.down.data = m.down
            module.up.data = m.up
            module.zeroGradients()
        }
    }

    /// The gradients summed in `parameters`, in `parameters` order (A₀, B₀, A₁, B₁, …).
    public func gradients(from parameters: LoraParameters) -> [[Float]] {
        modules.flatMap { m -> [[Float]] in
            let module = parameters.modules[m.name]!
            return [module.gradDown.data, module.gradUp.data]
        }
    }
}

/// The transformer side of TrainingLoop on TrainableSD3Transformer: forward on the micro-batch's x_t with its
/// examples' prompt embeddings, the script's loss, backward to the LoRA. Prompt embeddings are computed once per
/// example with the frozen encoders (the script's compute_text_embeddings; deterministic, so caching changes nothing).
public struct TransformerGradients {
    public let model: TrainableSD3Transformer
    public let parameters: LoraParameters
    public let compute: Compute
    public let checkpointing: Bool
    /// Per example: [T, joint_attention_dim] and [pooled_projection_dim].
    public let text: [Tensor], pooled: [Tensor]

    /// `parameters` must be the `loras` the model was built with (`lora.makeParameters()`).
    public init(model: TrainableSD3Transformer, parameters: LoraParameters, compute: Compute, checkpointing: Bool,
                text: [Tensor], pooled: [Tensor]) {
        precondition(model.loras === parameters && text.count == pooled.count)
        (self.model, self.parameters, self.compute, self.checkpointing, self.text, self.pooled) = (model, parameters, compute, checkpointing, text, pooled)
    }

    public func callAsFunction(_ lora: TrainableLora, _ batch: MicroBatch) throws -> (loss: Float, gradients: [[Float]]) {
        lora.load(into: parameters)
        let tokens = text[batch.examples[0]].dim(0)
        let batchText = Tensor(shape: [batch.examples.count, tokens, text[0].dim(1)], data: batch.examples.flatMap { text[$0].data })
        let batchPooled = Tensor(shape: [batch.examples.count, pooled[0].count], data: batch.examples.flatMap { pooled[$0].data })
        // Every op returns a fresh tensor; freed blocks stay in the heap for the next op's (FreedMemoryReuse) instead of
        // being unmapped and faulted in again as zeroed pages.
        let loss = FreedMemoryReuse.reusingFreedMemory {
            let (prediction, tape) = model.forward(batch.noisy, text: batchText, pooled: batchPooled, timesteps: batch.timesteps,
                                                   checkpointing: checkpointing, compute: compute)
            let (loss, gradient) = batch.lossAndGradient(prediction: prediction)
            model.backward(tape, gradient: gradient, compute: compute)
            return loss
        }
        return (loss, lora.gradients(from: parameters))
    }
}
