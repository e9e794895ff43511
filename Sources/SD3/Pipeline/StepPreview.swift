import ImageIO
import Tensors

extension StableDiffusion3Pipeline {
    /// A step's preview: its x0 prediction (`StepProgress.denoised`, first image), through TAESD3 when there is one,
    /// else projected to RGB at latent size (`LatentPreview`). TAESD3 decodes x0 averaged over 2×2 latent cells, so the
    /// preview is half the image's side at a quarter of a full decode's cost (a 512² preview would cost ~6% of a 512²
    /// step; docs/cli.md, "TAESD3").
    public func preview(_ step: StepProgress) throws -> RGBImage {
        let x0 = step.denoised
        let (c, h, w) = (x0.dim(1), x0.dim(2), x0.dim(3))
        let first = Tensor(shape: [1, c, h, w], data: Array(x0.data.prefix(c * h * w)))
        guard let taesd else { return LatentPreview.rgb(first.data, channels: c, width: w, height: h) }
        let images = try taesd.decode(Self.averagePool2x2(first), compute: compute)
        // A NaN would reach the UInt8 conversion; the run itself stops on non-finite latents, the preview just greys.
        return VaeImageProcessor.postprocess(Tensor(shape: images.shape, data: images.data.map { $0.isFinite ? $0 : 0 }))[0]
    }

    /// torch's avg_pool2d(x, 2) on [B, C, H, W]: the mean of each 2×2 block, a last odd row or column dropped; a side
    /// under 2 is left whole.
    static func averagePool2x2(_ x: Tensor) -> Tensor {
        let (planes, h, w) = (x.dim(0) * x.dim(1), x.dim(2), x.dim(3))
        guard h >= 2, w >= 2 else { return x }
        let (outH, outW) = (h / 2, w / 2)
        var data = [Float](repeating: 0, count: planes * outH * outW)
        for p in 0..<planes {
            for i in 0..<outH {
                for j in 0..<outW {
                    let top = p * h * w + 2 * i * w + 2 * j
                    let sum = x.data[top] + x.data[top + 1] + x.data[top + w] + x.data[top + w + 1]
                    data[(p * outH + i) * outW + j] = sum / 4
                }
            }
        }
        return Tensor(shape: [x.dim(0), x.dim(1), outH, outW], data: data)
    }
}
