import Foundation
import SafeTensors
import Tensors

/// diffusers `PatchEmbed` with a stored positional table: Conv2d(C → D, k = p, stride p), tokens in
/// row-major order, plus the centre crop of the `pos_embed_max_size`² table (embeddings.py, cropped_pos_embed).
struct PatchEmbed: Sendable {
    let proj: Weight
    let bias: Tensor
    let table: Tensor  // [M², D]
    let patchSize: Int
    let maxSize: Int
    /// The kernel's key: run-time LoRA pairs (Hyper-SD3, Flash-SD3) sit on it flattened to [D, C·p·p].
    let key: String

    init(_ scope: WeightScope, inChannels: Int, width: Int, patchSize: Int, maxSize: Int, precision: Precision) throws {
        proj = Weight(try scope.tensor("proj.weight", shape: [width, inChannels, patchSize, patchSize]), precision: precision)
        key = scope.key("proj.weight")
        bias = try scope.tensor("proj.bias", shape: [width])
        table = try scope.tensor("pos_embed", shape: [1, maxSize * maxSize, width]).reshaped([maxSize * maxSize, width])
        self.patchSize = patchSize
        self.maxSize = maxSize
    }

    /// latents [B, C, H, W] → tokens [B, (H/p)·(W/p), D], plus the kernel's pairs among `loras`.
    func callAsFunction(_ latents: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Tensor {
        let (h, w) = (latents.dim(2) / patchSize, latents.dim(3) / patchSize)
        let width = table.dim(1)
        let patches = compute.conv2d(latents, proj, bias: bias, stride: patchSize)  // [B, D, h, w]
        var tokens = patches.reshaped([latents.dim(0), width, h * w]).permuted([0, 2, 1])  // [B, h·w, D]
        let pairs = loras[key].filter { $0.scale != 0 }
        if !pairs.isEmpty {
            // kernel = stride = p: the conv is a product on non-overlapping patches, so each pair adds s·(x·Aᵀ)·Bᵀ.
            let unfolded = unfold(latents)  // [B, h·w, C·p·p]
            for pair in pairs {
                let delta = compute.linear(compute.linear(unfolded, pair.down, bias: nil), pair.up, bias: nil)  // [B, h·w, D]
                tokens = Tensor(shape: tokens.shape, data: zip(tokens.data, delta.data).map { t, d in t + d * pair.scale })
            }
        }
        let top = (maxSize - h) / 2, left = (maxSize - w) / 2
        var crop = [Float]()
        crop.reserveCapacity(h * w * width)
        for row in 0..<h {
            let start = ((top + row) * maxSize + left) * width
            crop.append(contentsOf: table.data[start..<start + w * width])
        }
        let positions = Tensor(shape: [1, h * w, width], data: crop)
        return compute.add(tokens, Tensor.concat(Array(repeating: positions, count: latents.dim(0)), axis: 0))
    }

    /// [D, C·p·p]: the shape a LoRA pair on the kernel must give.
    var loraLayer: (key: String, shape: [Int]) { (key, [proj.shape[0], proj.shape.dropFirst().reduce(1, *)]) }

    /// latents [B, C, H, W] → patches [B, (H/p)·(W/p), C·p·p], each patch in the kernel's (c, kh, kw) order.
    func unfold(_ latents: Tensor) -> Tensor {
        let (batch, channels, height, width) = (latents.dim(0), latents.dim(1), latents.dim(2), latents.dim(3))
        let (h, w, p) = (height / patchSize, width / patchSize, patchSize)
        var out = [Float](repeating: 0, count: batch * h * w * channels * p * p)
        var index = 0
        for b in 0..<batch {
            for row in 0..<h {
                for column in 0..<w {
                    for c in 0..<channels {
                        for y in 0..<p {
                            let start = ((b * channels + c) * height + row * p + y) * width + column * p
                            for x in 0..<p {
                                out[index] = latents.data[start + x]
                                index += 1
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [batch, h * w, channels * p * p], data: out)
    }
}

/// diffusers' timestep sinusoid, [B] → [B, 256] (CombinedTimestepTextProjEmbeddings.sinusoid), for the Training target.
public func timestepSinusoid(_ timesteps: [Float]) -> Tensor { CombinedTimestepTextProjEmbeddings.sinusoid(timesteps) }

/// diffusers `CombinedTimestepTextProjEmbeddings`: temb = MLP(sinusoid(t)) + MLP(pooled text), each
/// Linear → SiLU → Linear.
struct CombinedTimestepTextProjEmbeddings: Sendable {
    let timeLinear1: Linear, timeLinear2: Linear
    let textLinear1: Linear, textLinear2: Linear

    init(_ scope: WeightScope, width: Int, pooledWidth: Int, precision: Precision) throws {
        timeLinear1 = try Linear(scope, "timestep_embedder.linear_1", in: 256, out: width, precision: precision)
        timeLinear2 = try Linear(scope, "timestep_embedder.linear_2", in: width, out: width, precision: precision)
        textLinear1 = try Linear(scope, "text_embedder.linear_1", in: pooledWidth, out: width, precision: precision)
        textLinear2 = try Linear(scope, "text_embedder.linear_2", in: width, out: width, precision: precision)
    }

    var linears: [Linear] { [timeLinear1, timeLinear2, textLinear1, textLinear2] }

    /// timesteps [B] (floats, e.g. 987.38), pooled [B, P] → temb [B, D].
    func callAsFunction(timesteps: [Float], pooled: Tensor, _ compute: Compute, _ loras: LayerLoras) -> Tensor {
        let time = timeLinear2(compute.silu(timeLinear1(Self.sinusoid(timesteps), compute, loras)), compute, loras)
        let text = textLinear2(compute.silu(textLinear1(pooled, compute, loras)), compute, loras)
        return compute.add(time, text)
    }

    /// diffusers `get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0)`, in float32
    /// as torch computes it: f_k = exp(−ln(10⁴)·k / 128), a = t·f_k, [cos(a), sin(a)].
    static func sinusoid(_ timesteps: [Float]) -> Tensor {
        let half = 128
        let logPeriod = Float(-Foundation.log(10000.0))
        let frequencies = (0..<half).map { Foundation.exp(logPeriod * Float($0) / Float(half)) }
        var data = [Float]()
        data.reserveCapacity(timesteps.count * 2 * half)
        for t in timesteps {
            let angles = frequencies.map { t * $0 }
            data += angles.map { Foundation.cos($0) }
            data += angles.map { Foundation.sin($0) }
        }
        return Tensor(shape: [timesteps.count, 2 * half], data: data)
    }
}
