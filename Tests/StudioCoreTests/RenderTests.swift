import Foundation
import ImageIO
import SD3
@testable import StudioCore
import Testing

/// Render snapshots as text lines, at the minimum size and a large one. The expected screens live in
/// Snapshots/NAME-COLSxROWS.txt; STUDIO_RECORD_SNAPSHOTS=1 rewrites them (review the diff before committing).
@Suite struct RenderTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Snapshots"
    static let sizes = [(80, 24), (160, 48)]

    static func idle() -> StudioState {
        var state = Support.state(prompt: "a red circle on a blue background, 水彩画 🎨")
        state.set(.negativePrompt, "blurry")
        state.set(.width, "16")
        state.set(.height, "16")
        return state
    }

    static func generating() -> StudioState {
        var state = idle()
        _ = reduce(&state, .generate)
        _ = reduce(&state, .engine(.encodedPrompt(seconds: 0, cached: true, warnings: [])))
        _ = reduce(&state, .engine(.step(index: 6, total: 28, sigma: 0.7, elapsed: 3.5, preview: Support.image)))
        state.focus = .negativePrompt
        return state
    }

    static func finished() -> StudioState {
        var state = generating()
        _ = reduce(&state, .engine(.finished(image: Support.image, metadata: Support.metadata(seed: 0), seconds: 14.2)))
        let record = HistoryRecord(id: 12, file: "/out/00012-0-a-red-circle-on-a.png", date: Date(timeIntervalSince1970: 0),
                                   metadata: Support.metadata(seed: 0))
        _ = reduce(&state, .saved(record))
        _ = reduce(&state, .toggleFavorite)
        return state
    }

    static func error() -> StudioState {
        var state = idle()
        _ = reduce(&state, .generate)
        _ = reduce(&state, .generationStopped(error: "/models/tiny-sd3/transformer: component folder not found"))
        return state
    }

    static func help() -> StudioState {
        var state = idle()
        _ = reduce(&state, .toggleHelp)
        return state
    }

    @Test(arguments: ["idle", "generating", "finished", "error", "help"])
    func snapshot(_ name: String) throws {
        let state = switch name {
        case "idle": Self.idle()
        case "generating": Self.generating()
        case "finished": Self.finished()
        case "error": Self.error()
        default: Self.help()
        }
        for (columns, rows) in Self.sizes { try Self.checkSnapshot(name, state, columns: columns, rows: rows) }
    }

    /// The screen against Snapshots/NAME-COLUMNSxROWS.txt, naming the first line that differs
    /// (STUDIO_RECORD_SNAPSHOTS=1 rewrites the file instead).
    static func checkSnapshot(_ name: String, _ state: StudioState, columns: Int, rows: Int) throws {
        let text = render(state, columns: columns, rows: rows).lines.joined(separator: "\n") + "\n"
        let path = "\(folder)/\(name)-\(columns)x\(rows).txt"
        if ProcessInfo.processInfo.environment["STUDIO_RECORD_SNAPSHOTS"] == "1" {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        let (got, want) = (text.split(separator: "\n", omittingEmptySubsequences: false), expected.split(separator: "\n", omittingEmptySubsequences: false))
        let firstDifference = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(text == expected, "\(name) \(columns)×\(rows): first different line \(firstDifference.map { "\($0.offset): got '\($0.element.0)' want '\($0.element.1)'" } ?? "count \(got.count) vs \(want.count)")\n\(text)")
    }

    @Test func everyLineFillsExactlyTheWidth() {
        // Help's box over the prompt's emoji once left the emoji whole under the border, a column too wide.
        for (columns, rows) in Self.sizes + [(81, 25), (100, 30)] {
          for state in [Self.finished(), Self.help()] {
            let screen = render(state, columns: columns, rows: rows)
            for y in 0..<rows {
                let width = (0..<columns).filter { !screen[$0, y].continuation }.reduce(0) { $0 + max(1, CellWidth.of(screen[$1, y].character)) }
                #expect(width == columns, "row \(y) at \(columns)×\(rows) is \(width) columns")
            }
          }
        }
    }

    /// A status longer than the screen is wide takes the progress row too while nothing runs (it was cut at the edge,
    /// unreadable); longer still, it ends in "…".
    @Test func aLongStatusIsReadInTwoRows() {
        var state = Self.idle()
        let message = "LoRA key transformer.transformer_blocks.0.attn.add_k_proj.lora_A.weight has shape [4, 1536] where the model needs [4, 24]; retrain it for this model"
        state.status = Status(text: message, isError: true)
        let lines = render(state, columns: 80, rows: 24).lines
        #expect((lines[22] + lines[23]).trimmingCharacters(in: .whitespaces) == message, "\(lines[22])|\(lines[23])")
        state.status = Status(text: String(repeating: "word ", count: 40), isError: false)
        #expect(render(state, columns: 80, rows: 24).lines[23].hasSuffix("…"))
    }

    @Test func tooSmallShowsAMessage() {
        let lines = render(Self.idle(), columns: 60, rows: 20).lines
        #expect(lines.contains { $0.contains("The terminal is 60×20.") })
        #expect(lines.contains { $0.contains("needs at least 80×24") })
    }

    /// A long model name never runs into the key hints (it did at 80 columns: "stable-diffuF1 help"): the hints
    /// shrink to F1's, and a name still too long is cut with an ellipsis, a space before the hints.
    @Test func aLongModelNameLeavesTheHintsAlone() {
        var state = Self.idle()
        for name in ["stable-diffusion-3.5-large-turbo-diffusers-fp16", String(repeating: "very-long-model-name-", count: 6)] {
            state.model = "/models/" + name
            for columns in [80, 100, 160] {
                let header = render(state, columns: columns, rows: 24).lines[0]
                let hints = header.range(of: " F1 help")
                #expect(hints != nil, "\(header)")
                #expect(header.contains(name) || header.contains("… F1 help"), "\(header)")
            }
        }
    }

    @Test func helpListsEveryBinding() {
        let text = render(Self.help(), columns: 80, rows: 24).lines.joined(separator: "\n")
        for binding in Bindings.table { #expect(text.contains(binding.help), "help lacks '\(binding.help)'") }
    }

    @Test func focusedEditorPlacesTheCursor() {
        var state = Self.idle()
        state.set(.prompt, "ab中")
        let screen = render(state, columns: 80, rows: 24)
        let layout = Layout(columns: 80, rows: 24)
        #expect(screen.cursor?.x == layout.prompt.x + 1 + 4 && screen.cursor?.y == layout.prompt.y + 1)
    }

    /// The help box covers the focused prompt: no text cursor is left on the screen (xterm drew it on the box).
    @Test func helpHidesTheTextCursor() {
        var state = Self.idle()
        state.set(.prompt, "a red circle")
        #expect(render(state, columns: 80, rows: 24).cursor != nil)
        state.showHelp = true
        #expect(render(state, columns: 80, rows: 24).cursor == nil)
    }

    @Test func symbolArtAveragesColoursIntoHalfBlocks() {
        var pixels = [UInt8](repeating: 0, count: 2 * 2 * 3)
        pixels[0...2] = [255, 0, 0]  // top-left red
        pixels[9...11] = [0, 0, 255]  // bottom-right blue
        var buffer = CellBuffer(width: 2, height: 1)
        SymbolArt.draw(RGBImage(width: 2, height: 2, pixels: pixels), into: &buffer, area: Rect(x: 0, y: 0, width: 2, height: 1), mode: .symbols)
        #expect(buffer[0, 0] == Cell("▀", .image, foreground: RGB(255, 0, 0), background: RGB(0, 0, 0)))
        #expect(buffer[1, 0] == Cell("▀", .image, foreground: RGB(0, 0, 0), background: RGB(0, 0, 255)))
        var ascii = CellBuffer(width: 2, height: 1)
        SymbolArt.draw(RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 255, count: 12)), into: &ascii, area: Rect(x: 0, y: 0, width: 2, height: 1), mode: .ascii)
        #expect(ascii.lines == ["@@"])
        // Pixel protocols leave the cells blank: the terminal driver writes the image over them.
        for mode in [GraphicsMode.sixel, .kitty] {
            var blank = CellBuffer(width: 2, height: 1)
            SymbolArt.draw(RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 255, count: 12)), into: &blank, area: Rect(x: 0, y: 0, width: 2, height: 1), mode: mode)
            #expect(blank == CellBuffer(width: 2, height: 1), "\(mode)")
        }
    }

    @Test func graphicsDetection() {
        #expect(GraphicsMode.detect(environment: ["LANG": "en_US.UTF-8", "TERM": "xterm-256color"]) == .symbols)
        #expect(GraphicsMode.detect(environment: ["LANG": "C", "TERM": "xterm"]) == .ascii)
        #expect(GraphicsMode.detect(environment: ["LC_ALL": "C.UTF-8", "TERM": "dumb"]) == .ascii)
    }
}
