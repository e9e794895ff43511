import ImageIO
import StudioCore
@testable import StudioTerminal
import Testing

/// The seed grid in a sixel or kitty terminal (docs/studio.md, Seed exploration): its thumbnails go out with the
/// pixel protocol the preview uses, one image per cell above its seed label, carrying their true colours — not
/// 8-colour blocks.
@MainActor
@Suite struct GridPixelTests {
    /// A demo-like draft: an orange disc on a purple field (scripts/demo-model/dataset.py PALETTE).
    static let draft: RGBImage = {
        let (orange, purple): ([UInt8], [UInt8]) = ([250, 125, 10], [140, 50, 180])
        let pixels = (0..<64 * 64).flatMap { i -> [UInt8] in
            let (dx, dy) = (Double(i % 64) - 31.5, Double(i / 64) - 31.5)
            return dx * dx + dy * dy < 14 * 14 ? orange : purple
        }
        return RGBImage(width: 64, height: 64, pixels: pixels)
    }()

    /// A grid of 4 seeds with every draft in, in `graphics` mode.
    static func state(_ graphics: GraphicsMode) -> StudioState {
        var state = StudioState(model: "/models/demo")
        state.graphics = graphics
        state.set(.prompt, "an orange circle on a purple background")
        state.set(.width, "64")
        state.set(.height, "64")
        _ = reduce(&state, .explore)
        for i in 0..<4 { state.explore?.images[i] = draft }
        state.explore?.rendering = nil
        state.job = .finished(seconds: 1)
        return state
    }

    /// The colour registers of a sixel sequence: `#Pc;2;Px;Py;Pz` (RGB, each 0…100 percent; VT340 sixel, DECGRI).
    static func sixelPalette(_ bytes: ArraySlice<UInt8>) -> [(r: Int, g: Int, b: Int)] {
        let text = String(decoding: bytes, as: UTF8.self)
        return text.split(separator: "#").dropFirst().compactMap { entry in
            let numbers = entry.prefix { $0.isNumber || $0 == ";" }.split(separator: ";").compactMap { Int($0) }
            guard numbers.count == 5, numbers[1] == 2 else { return nil }
            return (numbers[2], numbers[3], numbers[4])
        }
    }

    /// The DCS … ST sequences (one per image) in what the layer wrote.
    static func sixels(_ out: [UInt8]) -> [ArraySlice<UInt8>] {
        var found: [ArraySlice<UInt8>] = [], i = 0
        while i + 1 < out.count {
            if out[i] == 0x1B, out[i + 1] == UInt8(ascii: "P") {
                var end = i + 2
                while end + 1 < out.count, !(out[end] == 0x1B && out[end + 1] == UInt8(ascii: "\\")) { end += 1 }
                found.append(out[i..<min(end + 2, out.count)])
                i = end + 2
            } else {
                i += 1
            }
        }
        return found
    }

    static func near(_ entry: (r: Int, g: Int, b: Int), _ rgb: [UInt8]) -> Bool {
        let percent = rgb.map { Int((Double($0) * 100 / 255).rounded()) }
        return abs(entry.r - percent[0]) <= 3 && abs(entry.g - percent[1]) <= 3 && abs(entry.b - percent[2]) <= 3
    }

    @Test func sixelGridThumbnailsCarryTheirTrueColours() throws {
        let state = Self.state(.sixel)
        let size = (columns: 160, rows: 48)
        let images = StudioApp.pixelImages(state, size)
        #expect(images.count == 4, "the grid's 4 drafts are pixel images, got \(images.count)")
        let buffer = render(state, columns: size.columns, rows: size.rows)
        let preview = Layout(columns: size.columns, rows: size.rows).preview.inner
        for (image, area) in images {
            #expect(image == Self.draft)
            #expect(area.x >= preview.x && area.y >= preview.y && area.x + area.width <= preview.x + preview.width
                    && area.y + area.height <= preview.y + preview.height, "\(area) is outside the pane \(preview)")
            // The cells under a pixel image are left blank for it (no half blocks under the sixel).
            for y in area.y..<area.y + area.height {
                for x in area.x..<area.x + area.width { #expect(buffer[x, y].foreground == nil && buffer[x, y].character == " ") }
            }
        }
        // The seed labels are text below the images, not under them.
        #expect(buffer.lines.joined(separator: "\n").contains("[0]") && buffer.lines.joined(separator: "\n").contains(" 3 "))

        var written: [UInt8] = []
        let layer = PixelLayer(mode: .sixel, cellSize: { CellSize(width: 10, height: 20) }, write: { written += $0 })
        layer.flushed(buffer, images: images, repainted: false)
        let sequences = Self.sixels(written)
        #expect(sequences.count == 4, "one sixel image per thumbnail, got \(sequences.count)")
        for sequence in sequences {
            let palette = Self.sixelPalette(sequence)
            // Orange stays orange and purple purple: the registers hold the draft's colours (within libchafa's
            // rounding to percent), not an 8-colour terminal's yellow and magenta.
            #expect(palette.contains { Self.near($0, [250, 125, 10]) }, "no orange register in \(palette)")
            #expect(palette.contains { Self.near($0, [140, 50, 180]) }, "no purple register in \(palette)")
            #expect(!palette.contains { Self.near($0, [255, 255, 0]) || Self.near($0, [255, 0, 255]) }, "8-colour registers in \(palette)")
        }
        // Each image goes where its cell is: CUP to the cell, then the sixel.
        let text = String(decoding: written, as: UTF8.self)
        for (image, area) in images {
            let rect = PixelEncoder.fit(width: image.width, height: image.height, into: area, cell: CellSize(width: 10, height: 20))
            #expect(text.contains("\u{1B}[\(rect.y + 1);\(rect.x + 1)H\u{1B}P"), "no image at \(rect)")
        }

        // Nothing changed: nothing is sent again. A new draft in one cell: only that cell goes out.
        written = []
        layer.flushed(buffer, images: images, repainted: false)
        #expect(written.isEmpty, "\(written.count) bytes re-sent for an unchanged grid")
        var changed = images
        changed[2].0 = RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 200, count: 64 * 64 * 3))
        layer.flushed(buffer, images: changed, repainted: false)
        #expect(Self.sixels(written).count == 1)
    }

    @Test func kittyGridSendsEveryThumbnail() {
        let state = Self.state(.kitty)
        let images = StudioApp.pixelImages(state, (160, 48))
        #expect(images.count == 4)
        var written: [UInt8] = []
        let layer = PixelLayer(mode: .kitty, cellSize: { CellSize(width: 10, height: 20) }, write: { written += $0 })
        layer.flushed(render(state, columns: 160, rows: 48), images: images, repainted: false)
        let text = String(decoding: written, as: UTF8.self)
        #expect(text.components(separatedBy: "a=T").count - 1 == 4, "one kitty transmit-and-display per thumbnail")
    }

    @Test func textModesKeepHalfBlockThumbnails() {
        let state = Self.state(.symbols)
        #expect(StudioApp.pixelImages(state, (160, 48)).isEmpty)
        let buffer = render(state, columns: 160, rows: 48)
        #expect(buffer.cells.filter { $0.character == "▀" }.count > 100)
    }
}
