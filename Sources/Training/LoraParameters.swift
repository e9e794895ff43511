import SafeTensors
import Tensors

/// One trained LoRA pair beside a frozen linear layer: y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ (peft `LoraLayer.forward`,
/// s = alpha / rank), with the gradients of the loss with respect to A and B, summed over backward passes until
/// `zeroGradients`. A convolution's pair (the patch embedding) is kept flattened: A [r, C·p·p], B [out, r].
public final class LoraModule {
    public var down: Tensor  // A [r, in]
    public var up: Tensor    // B [out, r]
    public let scale: Float
    public var gradDown: Tensor
    public var gradUp: Tensor

    public init(down: Tensor, up: Tensor, scale: Float) {
        precondition(down.rank == 2 && up.rank == 2 && up.dim(1) == down.dim(0), "LoraModule: A \(down.shape) and B \(up.shape) are not [r, in] and [out, r]")
        (self.down, self.up, self.scale) = (down, up, scale)
        gradDown = Tensor(zeros: down.shape)
        gradUp = Tensor(zeros: up.shape)
    }

    public var rank: Int { down.dim(0) }
    /// [out, in] of the layer it adapts.
    public var layerShape: [Int] { [up.dim(0), down.dim(1)] }

    public func zeroGradients() {
        gradDown = Tensor(zeros: down.shape)
        gradUp = Tensor(zeros: up.shape)
    }
}

public enum LoraTrainingError: Error, Equatable, CustomStringConvertible {
    case missingPair(module: String, missing: String)
    case matchesNoLayer(module: String)
    case shapeMismatch(module: String, layer: [Int], lora: [Int])

    public var description: String {
        switch self {
        case .missingPair(let module, let missing): "LoRA module \(module) has no \(missing)"
        case .matchesNoLayer(let module): "LoRA module \(module) names no linear layer of the transformer"
        case .shapeMismatch(let module, let layer, let lora): "LoRA module \(module) is \(lora) but its layer is \(layer) ([out, in])"
        }
    }
}

/// The trained LoRA of a transformer: modules keyed by diffusers' module names (`transformer_blocks.0.attn.to_q`,
/// `pos_embed.proj`, …), as peft's state dict names them.
public final class LoraParameters {
    public let modules: [String: LoraModule]

    public init(modules: [String: LoraModule]) { self.modules = modules }

    /// peft's state dict (`get_peft_model_state_dict` without the adapter name): `<module>.lora_A.weight` [r, in] or, for
    /// a convolution, [r, C, kh, kw]; `<module>.lora_B.weight` [out, r] or [out, r, 1, 1]. Scale alpha / r.
    public convenience init(peft tensors: [String: Tensor], alpha: Float) throws {
        var modules = [String: LoraModule]()
        for key in tensors.keys where key.hasSuffix(".lora_A.weight") {
            let module = String(key.dropLast(".lora_A.weight".count))
            guard let up = tensors[module + ".lora_B.weight"] else {
                throw LoraTrainingError.missingPair(module: module, missing: "lora_B.weight")
            }
            let down = tensors[key]!
            let a = down.reshaped([down.dim(0), down.count / max(1, down.dim(0))])
            let b = up.reshaped([up.dim(0), up.count / max(1, up.dim(0))])
            modules[module] = LoraModule(down: a, up: b, scale: alpha / Float(a.dim(0)))
        }
        for key in tensors.keys where key.hasSuffix(".lora_B.weight") {
            let module = String(key.dropLast(".lora_B.weight".count))
            if modules[module] == nil { throw LoraTrainingError.missingPair(module: module, missing: "lora_A.weight") }
        }
        self.init(modules: modules)
    }

    public func zeroGradients() { modules.values.forEach { $0.zeroGradients() } }
}

/// A frozen linear layer (W [out, in], bias [out]) and, where the LoRA targets it, its trained pair.
struct AdaptedLinear {
    let name: String
    let weight: Weight
    let bias: Tensor?
    let lora: LoraModule?
    /// The frozen product's operands (`Compute.linear(_:_:bias:products:)`).
    let products: OperandType

    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }

    /// The layer `<scope>.<name>` (`weight` [out, in], `bias` [out]).
    init(_ scope: WeightScope, _ name: String, in inFeatures: Int, out outFeatures: Int, precision: Precision,
         products: OperandType, loras: LoraParameters, used: inout Set<String>) throws {
        let layer = scope.scope(name)
        try self.init(name: layer.prefix, weight: try layer.tensor("weight", shape: [outFeatures, inFeatures]),
                      bias: try layer.tensor("bias", shape: [outFeatures]), precision: precision, products: products, loras: loras, used: &used)
    }

    /// `weight` [out, in] (a convolution's kernel already flattened).
    init(name: String, weight: Tensor, bias: Tensor?, precision: Precision, products: OperandType = .fp32, loras: LoraParameters,
         used: inout Set<String>) throws {
        self.name = name
        self.products = products
        self.weight = Weight(weight, precision: precision)
        self.bias = bias
        lora = loras.modules[name]
        if let lora {
            guard lora.layerShape == weight.shape else {
                throw LoraTrainingError.shapeMismatch(module: name, layer: weight.shape, lora: lora.layerShape)
            }
            used.insert(name)
        }
    }

    /// x [.., in] → [.., out].
    func forward(_ x: Tensor, _ compute: Compute) -> Tensor {
        var y = compute.linear(x, weight, bias: bias, products: products)
        if let lora {
            let delta = compute.linear(compute.linear(x, Weight(lora.down), bias: nil), Weight(lora.up), bias: nil)  // [.., out]
            let s = lora.scale
            y.data.withUnsafeMutableBufferPointer { out in
                delta.data.withUnsafeBufferPointer { d in for i in 0..<out.count { out[i] += s * d[i] } }
            }
        }
        return y
    }

    /// dy [.., out] and the forward's input x [.., in]: adds dL/dA = s·(dy·B)ᵀ·x and dL/dB = s·dyᵀ·(x·Aᵀ) to the pair's
    /// gradients and returns dL/dx = dy·W + s·(dy·B)·A (nil when `inputGradient` is false: x is data).
    func backward(_ dy: Tensor, input x: Tensor, _ compute: Compute, inputGradient: Bool = true) -> Tensor? {
        let rows = dy.count / outFeatures
        precondition(x.count == rows * inFeatures, "\(name) backward: input \(x.shape) and gradient \(dy.shape) disagree")
        var dx = inputGradient ? compute.productWithWeight(dy.data, rows: rows, weight, products: products) : nil
        if let lora, rows > 0 {
            let (r, s) = (lora.rank, lora.scale)
            let u = compute.product(x.data, lora.down.data, m: rows, n: r, k: inFeatures, transposeB: true)  // x·Aᵀ [rows, r]
            let g = compute.product(dy.data, lora.up.data, m: rows, n: r, k: outFeatures, transposeB: false)  // dy·B [rows, r]
            // dBᵀ = s·uᵀ·dy [r, out]; dA = s·gᵀ·x [r, in].
            let dUpT = compute.product(transposed(u, rows: rows, columns: r), dy.data, m: r, n: outFeatures, k: rows, transposeB: false, alpha: s)
            accumulate(&lora.gradUp.data, transposed(dUpT, rows: r, columns: outFeatures))
            let dDown = compute.product(transposed(g, rows: rows, columns: r), x.data, m: r, n: inFeatures, k: rows, transposeB: false, alpha: s)
            accumulate(&lora.gradDown.data, dDown)
            if dx != nil {
                accumulate(&dx!, compute.product(g, lora.down.data, m: rows, n: inFeatures, k: r, transposeB: false, alpha: s))
            }
        }
        return dx.map { Tensor(shape: x.shape, data: $0) }
    }
}
