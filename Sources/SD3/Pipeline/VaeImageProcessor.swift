import ImageIO
import Tensors

/// diffusers `VaeImageProcessor` (image_processor.py) with do_normalize and Lanczos resizing, op for op in float32.
public enum VaeImageProcessor {
    /// Decoder output [B, 3, H, W] → 8-bit images: clamp(x·0.5 + 0.5, 0, 1)·255, rounded half to even (numpy).
    /// NaN becomes 0 (Float → UInt8 of NaN traps); callers stop on non-finite images before this.
    public static func postprocess(_ images: Tensor) -> [RGBImage] {
        precondition(images.rank == 4 && images.dim(1) == 3, "postprocess: expected [B, 3, H, W], got \(images.shape)")
        let (batch, height, width) = (images.dim(0), images.dim(2), images.dim(3))
        let plane = height * width
        return (0..<batch).map { b in
            var pixels = [UInt8](repeating: 0, count: plane * 3)
            for c in 0..<3 {
                let base = (b * 3 + c) * plane
                for p in 0..<plane {
                    let half = images.data[base + p] * 0.5
                    let shifted = half + 0.5
                    let v = shifted.isNaN ? 0 : min(max(shifted, 0), 1)
                    pixels[p * 3 + c] = UInt8((v * 255).rounded(.toNearestOrEven))
                }
            }
            return RGBImage(width: width, height: height, pixels: pixels)
        }
    }

    /// An input image → [1, 3, height, width] in [−1, 1]: Pillow-exact Lanczos resize to the pipeline size
    /// (always, as diffusers does), /255 in float32, then 2x − 1.
    public static func preprocess(_ image: RGBImage, width: Int, height: Int) -> Tensor {
        let resized = LanczosResize.resize(image, width: width, height: height)
        let plane = width * height
        var data = [Float](repeating: 0, count: 3 * plane)
        for p in 0..<plane {
            for c in 0..<3 {
                let unit = Float(resized.pixels[p * 3 + c]) / 255
                data[c * plane + p] = 2 * unit - 1
            }
        }
        return Tensor(shape: [1, 3, height, width], data: data)
    }
}
