import Foundation

/// Pillow's `Image.resize(size, Image.LANCZOS)` on 8-bit images, reproduced exactly (Pillow
/// src/libImaging/Resample.c): separable passes (horizontal, then vertical), Lanczos-3 weights widened by
/// the downscale factor, normalized, turned into 22-bit fixed point, accumulated in integers with rounding.
/// diffusers' VaeImageProcessor resizes img2img inputs this way, so the pixels must match to the bit.
public enum LanczosResize {
    static let precisionBits = 32 - 8 - 2

    /// Pillow's resampling filters that share this code: LANCZOS (support 3) and BILINEAR (the triangle, support 1;
    /// torchvision's `Resize(interpolation=BILINEAR)` on a PIL image, as diffusers' training scripts use it).
    public enum Filter: String, Sendable, CaseIterable {
        case lanczos, bilinear
    }

    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Filter = .lanczos) -> RGBImage {
        precondition(width > 0 && height > 0, "resize: target \(width)×\(height)")
        if width == image.width && height == image.height { return image }
        let horizontal = coefficients(inSize: image.width, outSize: width, filter: filter)
        let vertical = coefficients(inSize: image.height, outSize: height, filter: filter)
        // Pillow 13 runs the vertical pass first when the width grows and the height shrinks (found by
        // comparing against both orders: Resample.c up to 2026-08 always went horizontal first).
        if width > image.width && height < image.height {
            let shrunk = pass(image.pixels, lines: image.width, lineOffset: 0, inLength: image.height, outLength: height,
                              along: .vertical, vertical)
            let pixels = pass(shrunk, lines: height, lineOffset: 0, inLength: image.width, outLength: width,
                              along: .horizontal, horizontal)
            return RGBImage(width: width, height: height, pixels: pixels)
        }
        var pixels = image.pixels
        var (currentWidth, rows) = (image.width, image.height)
        var verticalBounds = vertical.bounds
        if width != image.width {
            // Only the source rows the vertical pass reads: [first, last).
            let first = vertical.bounds[0].start
            let last = vertical.bounds[height - 1].start + vertical.bounds[height - 1].count
            verticalBounds = vertical.bounds.map { ($0.start - first, $0.count) }
            pixels = pass(pixels, lines: last - first, lineOffset: first, inLength: currentWidth, outLength: width,
                          along: .horizontal, horizontal)
            currentWidth = width
            rows = last - first
        }
        if height != image.height {
            pixels = pass(pixels, lines: currentWidth, lineOffset: 0, inLength: rows, outLength: height,
                          along: .vertical, Coefficients(size: vertical.size, weights: vertical.weights, bounds: verticalBounds))
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    struct Coefficients {
        let size: Int  // kernel slots per output pixel
        let weights: [Int32]  // [outSize × size], fixed point
        let bounds: [(start: Int, count: Int)]
    }

    enum Axis { case horizontal, vertical }

    static func lanczos(_ x: Double) -> Double {
        func sinc(_ x: Double) -> Double { x == 0 ? 1 : Foundation.sin(x * Double.pi) / (x * Double.pi) }
        return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0
    }

    /// Resample.c bilinear_filter: 1 − |x| inside (−1, 1).
    static func triangle(_ x: Double) -> Double {
        let a = abs(x)
        return a < 1 ? 1 - a : 0
    }

    /// precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize).
    static func coefficients(inSize: Int, outSize: Int, filter: Filter = .lanczos) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = (filter == .lanczos ? 3.0 : 1.0) * filterScale
        let size = Int(Foundation.ceil(support)) * 2 + 1
        var weights = [Int32](repeating: 0, count: outSize * size)
        var bounds: [(Int, Int)] = []
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let inverse = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var k = [Double](repeating: 0, count: max(xmax, 0))
            var total = 0.0
            for x in 0..<max(xmax, 0) {
                let position = (Double(x + xmin) - center + 0.5) * inverse
                let w = filter == .lanczos ? lanczos(position) : triangle(position)
                k[x] = w
                total += w
            }
            for x in 0..<k.count {
                let w = total != 0 ? k[x] / total : k[x]
                let scaled = w * Double(1 << precisionBits)
                weights[xx * size + x] = Int32(w < 0 ? -0.5 + scaled : 0.5 + scaled)
            }
            bounds.append((xmin, max(xmax, 0)))
        }
        return Coefficients(size: size, weights: weights, bounds: bounds)
    }

    /// One pass over RGB bytes laid out row-major with `currentWidth` pixels per row.
    static func pass(_ input: [UInt8], lines: Int, lineOffset: Int, inLength: Int, outLength: Int, along axis: Axis,
                     _ c: Coefficients) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: lines * outLength * 3)
        let half = Int32(1 << (precisionBits - 1))
        func clip(_ value: Int32) -> UInt8 { UInt8(clamping: min(max(value >> Int32(precisionBits), 0), 255)) }
        for line in 0..<lines {
            for o in 0..<outLength {
                let (start, count) = c.bounds[o]
                var sums = (half, half, half)
                for t in 0..<count {
                    let w = c.weights[o * c.size + t]
                    let index: Int
                    switch axis {
                    case .horizontal: index = ((line + lineOffset) * inLength + start + t) * 3
                    case .vertical: index = ((start + t) * lines + line) * 3
                    }
                    sums.0 &+= Int32(input[index]) &* w
                    sums.1 &+= Int32(input[index + 1]) &* w
                    sums.2 &+= Int32(input[index + 2]) &* w
                }
                let target: Int
                switch axis {
                case .horizontal: target = (line * outLength + o) * 3
                case .vertical: target = (o * lines + line) * 3
                }
                output[target] = clip(sums.0)
                output[target + 1] = clip(sums.1)
                output[target + 2] = clip(sums.2)
            }
        }
        return output
    }
}
