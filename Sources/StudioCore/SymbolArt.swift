import ImageIO

/// Images as text cells: Unicode upper half blocks (two pixels per cell, foreground over background) or an
/// ASCII luminance ramp. Pixels are box-averaged from the image, keeping its aspect ratio with square pixels
/// (a cell is about twice as tall as wide, so one cell is 1×2 pixels), centred in the area. Pixel modes draw
/// nothing here: their cells stay blank for the terminal driver's image.
public enum SymbolArt {
    static let ramp: [Character] = Array(" .:-=+*#%@")

    public static func draw(_ image: RGBImage, into buffer: inout CellBuffer, area: Rect, mode: GraphicsMode) {
        guard mode == .symbols || mode == .ascii, area.width > 0, area.height > 0 else { return }
        let scale = min(Double(area.width) / Double(image.width), Double(area.height * 2) / Double(image.height))
        let columns = max(1, Int(Double(image.width) * scale))
        let pixelRows = max(2, Int(Double(image.height) * scale) / 2 * 2)
        let x0 = area.x + (area.width - columns) / 2
        let y0 = area.y + (area.height - pixelRows / 2) / 2
        for row in 0..<pixelRows / 2 {
            for column in 0..<columns {
                let top = average(image, column, row * 2, columns, pixelRows)
                let bottom = average(image, column, row * 2 + 1, columns, pixelRows)
                if mode == .symbols {
                    buffer[x0 + column, y0 + row] = Cell("▀", .image, foreground: top, background: bottom)
                } else {
                    let level = (luminance(top) + luminance(bottom)) / 2
                    let index = min(ramp.count - 1, Int(level * Double(ramp.count)))
                    buffer[x0 + column, y0 + row] = Cell(ramp[index], .image)
                }
            }
        }
    }

    static func luminance(_ c: RGB) -> Double {
        (0.2126 * Double(c.r) + 0.7152 * Double(c.g) + 0.0722 * Double(c.b)) / 255
    }

    /// The mean colour of the image pixels under output pixel (x, y) of a `width`×`height` grid.
    static func average(_ image: RGBImage, _ x: Int, _ y: Int, _ width: Int, _ height: Int) -> RGB {
        let x0 = x * image.width / width, x1 = max(x0 + 1, (x + 1) * image.width / width)
        let y0 = y * image.height / height, y1 = max(y0 + 1, (y + 1) * image.height / height)
        var sum = (0, 0, 0), count = 0
        for py in y0..<min(y1, image.height) {
            for px in x0..<min(x1, image.width) {
                let (r, g, b) = image[px, py]
                sum = (sum.0 + Int(r), sum.1 + Int(g), sum.2 + Int(b))
                count += 1
            }
        }
        count = max(count, 1)
        return RGB(UInt8(sum.0 / count), UInt8(sum.1 / count), UInt8(sum.2 / count))
    }
}
