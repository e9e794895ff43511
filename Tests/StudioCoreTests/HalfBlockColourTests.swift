import ImageIO
@testable import StudioCore
import Testing

/// Half-block previews on a 256-colour terminal: a generated "flat" background wobbles by a few
/// levels, and a per-pixel nearest entry flips between two palette entries where the colour sits on a boundary.
/// `TerminalPalette.settle` (what Terminal.draw applies) must give such an area one colour and keep gradients monotone.
@Suite struct HalfBlockColourTests {
    /// A 48×48 image of `colour` with a deterministic ±3 wobble per channel (an LCG; no seed-dependent randomness).
    static func wobbly(_ colour: (Int, Int, Int)) -> RGBImage {
        var state: UInt32 = 12345
        func wobble() -> Int {
            state = state &* 1_664_525 &+ 1_013_904_223
            return Int(state >> 16) % 7 - 3
        }
        let pixels = (0..<48 * 48).flatMap { _ in
            [colour.0, colour.1, colour.2].map { UInt8(max(0, min(255, $0 + wobble()))) }
        }
        return RGBImage(width: 48, height: 48, pixels: pixels)
    }

    /// The image drawn as half blocks in a 24×12 area, as the preview pane does.
    static func cells(_ image: RGBImage) -> CellBuffer {
        var buffer = CellBuffer(width: 24, height: 12)
        SymbolArt.draw(image, into: &buffer, area: Rect(x: 0, y: 0, width: 24, height: 12), mode: .symbols)
        return buffer
    }

    static func colours(_ buffer: CellBuffer) -> Set<RGB> {
        Set(buffer.cells.flatMap { [$0.foreground, $0.background].compactMap { $0 } })
    }

    @Test(arguments: [(115, 40, 200), (200, 155, 60), (133, 133, 133), (33, 33, 33)])
    func aFlatAreaIsOneColourIn256(colour: (Int, Int, Int)) {
        let image = Self.wobbly(colour)
        var buffer = Self.cells(image)
        // Each of these sits on a boundary (the cube's 115 and 155 between its levels, the grey ramp's 10-level
        // steps), so the per-pixel nearest entry — what the terminal used before — shows two or more entries.
        let perPixel = Set(Self.colours(buffer).map { TerminalPalette.shown($0, depth: .palette256) })
        #expect(perPixel.count >= 2, "the test image does not straddle an entry boundary: \(perPixel)")
        TerminalPalette.settle(&buffer, depth: .palette256)
        let settled = Self.colours(buffer)
        #expect(settled.count == 1, "a flat area shows \(settled.count) colours: \(settled)")
        // The one colour is one of the entries the pixels were nearest to.
        #expect(settled.isSubset(of: perPixel), "\(settled) is none of \(perPixel)")
    }

    @Test(arguments: [ColourDepth.palette256, .sixteen, .eight])
    func equalInputsGiveEqualOutputs(depth: ColourDepth) {
        // Two copies of the same image side by side settle to the same colours cell for cell.
        let image = Self.wobbly((115, 40, 200))
        var buffer = CellBuffer(width: 48, height: 12)
        SymbolArt.draw(image, into: &buffer, area: Rect(x: 0, y: 0, width: 24, height: 12), mode: .symbols)
        SymbolArt.draw(image, into: &buffer, area: Rect(x: 24, y: 0, width: 24, height: 12), mode: .symbols)
        TerminalPalette.settle(&buffer, depth: depth)
        for y in 0..<12 {
            for x in 0..<24 {
                #expect(buffer[x, y].foreground == buffer[x + 24, y].foreground && buffer[x, y].background == buffer[x + 24, y].background)
            }
        }
    }

    @Test(arguments: [(1, 1, 1), (1, 0, 0), (0, 1, 0)])
    func aGradientStaysMonotone(direction: (Int, Int, Int)) {
        // 0…255 left to right (grey, red, green), the same on every row.
        let width = 96
        let pixels = (0..<32).flatMap { _ in
            (0..<width).flatMap { x -> [UInt8] in
                let v = UInt8(x * 255 / (width - 1))
                return [direction.0 * Int(v), direction.1 * Int(v), direction.2 * Int(v)].map(UInt8.init)
            }
        }
        var buffer = CellBuffer(width: width, height: 16)
        SymbolArt.draw(RGBImage(width: width, height: 32, pixels: pixels), into: &buffer, area: Rect(x: 0, y: 0, width: width, height: 16), mode: .symbols)
        TerminalPalette.settle(&buffer, depth: .palette256)
        func level(_ c: RGB) -> Int { Int(c.r) * direction.0 + Int(c.g) * direction.1 + Int(c.b) * direction.2 }
        for y in 0..<16 {
            let row = (0..<width).flatMap { [buffer[$0, y].foreground!, buffer[$0, y].background!] }
            let tops = (0..<width).map { level(buffer[$0, y].foreground!) }, bottoms = (0..<width).map { level(buffer[$0, y].background!) }
            #expect(zip(tops, tops.dropFirst()).allSatisfy { $0 <= $1 }, "row \(y) tops: \(tops)")
            #expect(zip(bottoms, bottoms.dropFirst()).allSatisfy { $0 <= $1 }, "row \(y) bottoms: \(bottoms)")
            #expect(tops == bottoms, "row \(y): a horizontal gradient has the same colour in a cell's two halves")
            // Still a gradient: at least as many steps as the palette has levels along it (6 cube levels; grey
            // also has the 24-step ramp).
            #expect(Set(row).count >= (direction == (1, 1, 1) ? 12 : 6), "row \(y) has only \(Set(row).count) colours")
            #expect(level(row.first!) == 0 && level(row.last!) == 255 * (direction.0 + direction.1 + direction.2))
        }
    }
}
