/// A fast RGB preview of SD3 latents without the VAE: a fixed linear map from the 16 latent channels to RGB
/// per latent cell (ComfyUI comfy/latent_formats.py class SD3, `latent_rgb_factors` and bias).
public enum LatentPreview {
    static let factors: [[Float]] = [
        [-0.0922, -0.0175, 0.0749], [0.0311, 0.0633, 0.0954], [0.1994, 0.0927, 0.0458], [0.0856, 0.0339, 0.0902],
        [0.0587, 0.0272, -0.0496], [-0.0006, 0.1104, 0.0309], [0.0978, 0.0306, 0.0427], [-0.0042, 0.1038, 0.1358],
        [-0.0194, 0.0020, 0.0669], [-0.0488, 0.0130, -0.0268], [0.0922, 0.0988, 0.0951], [-0.0278, 0.0524, -0.0542],
        [0.0332, 0.0456, 0.0895], [-0.0069, -0.0030, -0.0810], [-0.0596, -0.0465, -0.0293], [-0.1448, -0.1463, -0.1189],
    ]
    static let bias: [Float] = [0.2394, 0.2135, 0.1925]

    /// Model-space latents of one image, `channels` planes of `width`×`height` floats (channel-major), → RGB at
    /// latent resolution. Latents with other than 16 channels preview as the grey mean of their first three.
    public static func rgb(_ latents: [Float], channels: Int, width: Int, height: Int) -> RGBImage {
        let plane = width * height
        precondition(latents.count >= channels * plane, "LatentPreview: \(latents.count) values for \(channels)×\(width)×\(height)")
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for p in 0..<plane {
            for c in 0..<3 {
                var v: Float
                if channels == 16 {
                    v = bias[c]
                    for k in 0..<16 { v += latents[k * plane + p] * factors[k][c] }
                } else {
                    v = (0..<min(3, channels)).map { latents[$0 * plane + p] }.reduce(0, +) / Float(max(1, min(3, channels)))
                }
                // NaN (a broken model's latents) previews as mid-grey: min/max pass it through, and UInt8(NaN) traps.
                if v.isNaN { v = 0 }
                pixels[p * 3 + c] = UInt8(((min(max(v, -1), 1) + 1) * 127.5).rounded())
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
