import Foundation
import SD3
@testable import StudioCore
import Testing

/// What the demo model understands, in the prompt field (docs/studio.md, the prompt guide):
/// models/sd3-demo/prompt_guide.json's example, dim, while the prompt is empty; the words it knows on the prompt
/// box's border while a prompt uses none of them; nothing of either for a model without a guide.
@Suite struct PromptGuideTests {
    static let demo = Support.packageRoot + "/models/sd3-demo"

    static func demoState(prompt: String) throws -> StudioState {
        var state = StudioState(model: Self.demo, randomSeed: 42)
        state.apply(try ModelDefaults.read(model: Self.demo))
        state.promptGuide = try #require(PromptGuide.read(model: Self.demo), "models/sd3-demo has no readable \(PromptGuide.fileName)")
        state.set(.prompt, prompt)
        return state
    }

    static func screen(_ state: StudioState, _ columns: Int, _ rows: Int) -> String {
        render(state, columns: columns, rows: rows).lines.joined(separator: "\n")
    }

    @Test func theDemoShipsAGuideOfItsGrammar() throws {
        let guide = try #require(PromptGuide.read(model: Self.demo))
        #expect(guide.examples.first == "a red circle at the top left on a blue background")
        #expect(guide.groups.map(\.name) == ["colours", "shapes", "positions"])
        #expect(guide.groups[0].words.count == 8 && guide.groups[1].words.count == 6 && guide.groups[2].words.count == 9)
        for example in guide.examples { #expect(guide.knowsAnyWord(of: example), "\(example)") }
        // Other models have none: the tiny test model, a missing folder.
        #expect(PromptGuide.read(model: Support.tinyModel) == nil)
        #expect(PromptGuide.read(model: "/nonexistent") == nil)
    }

    @Test func wordsAreMatchedWholeAndPhrasesInOrder() throws {
        let guide = try #require(PromptGuide.read(model: Self.demo))
        #expect(!guide.knowsAnyWord(of: "a cat"))
        #expect(!guide.knowsAnyWord(of: "a starry sky, redwood forest"), "star and red inside other words are not the words")
        #expect(guide.knowsAnyWord(of: "A RED cat"))
        #expect(guide.knowsAnyWord(of: "something at the top, left alone"))
        let positions = PromptGuide(examples: [], groups: [.init(name: "positions", words: ["top left"])])
        #expect(positions.knowsAnyWord(of: "at the Top  Left") && !positions.knowsAnyWord(of: "left at the top"))
    }

    @Test func theHintFitsItsWidth() throws {
        let guide = try #require(PromptGuide.read(model: Self.demo))
        #expect(guide.hint(width: 38) == "model knows: red … circle … top left …")
        #expect(guide.hint(width: 44) == "model knows: red … · circle … · top left …")
        let wide = guide.hint(width: 150)
        #expect(CellWidth.of(wide) <= 150 && wide.contains("red orange yellow") && wide.contains("circle square") && wide.contains("top left top"))
        #expect(CellWidth.of(guide.hint(width: 20)) <= 20)
    }

    @Test(arguments: [(80, 24), (160, 48)])
    func anEmptyPromptShowsTheModelsExampleDim(columns: Int, rows: Int) throws {
        let state = try Self.demoState(prompt: "")
        #expect(state.focus == .prompt, "the example shows in the focused, empty field the studio opens with")
        let buffer = render(state, columns: columns, rows: rows)
        let box = Layout(columns: columns, rows: rows).editor(.prompt).inner
        let firstRow = (box.x..<box.x + box.width).map { String(buffer[$0, box.y].character) }.joined()
        #expect(firstRow.hasPrefix("e.g. a red circle"), "\(firstRow)")
        #expect(buffer[box.x, box.y].role == .hint, "the example is dim (the hint role), not typed text")
        #expect(Self.screen(state, columns, rows).contains("blue background"), "the example wraps in the box, whole")
        // Typing replaces it.
        var typed = state
        _ = reduce(&typed, .insert("a"))
        #expect(!Self.screen(typed, columns, rows).contains("e.g."))
    }

    @Test(arguments: [(80, 24), (160, 48)])
    func aPromptWithNoKnownWordGetsTheHint(columns: Int, rows: Int) throws {
        let cat = Self.screen(try Self.demoState(prompt: "a cat"), columns, rows)
        #expect(cat.contains("model knows: red"), "\(cat)")
        #expect(cat.contains("circle") && cat.contains("top left"))
        let red = Self.screen(try Self.demoState(prompt: "a red cat"), columns, rows)
        #expect(!red.contains("model knows"), "a prompt with a known word gets no hint")
        // The hint sits on the prompt box's bottom border, inside its corners.
        let box = Layout(columns: columns, rows: rows).editor(.prompt)
        let border = render(try Self.demoState(prompt: "a cat"), columns: columns, rows: rows).lines[box.y + box.height - 1]
        let cells = Array(border)
        #expect(cells[box.x] == "└" && cells[box.x + box.width - 1] == "┘", "\(border)")
        try RenderTests.checkSnapshot("demo-hint", try Self.demoState(prompt: "a cat"), columns: columns, rows: rows)
        try RenderTests.checkSnapshot("demo-example", try Self.demoState(prompt: ""), columns: columns, rows: rows)
    }

    @Test func otherModelsShowNeither() {
        var state = Support.state(prompt: "")
        state.focus = .negativePrompt
        let empty = Self.screen(state, 80, 24)
        #expect(!empty.contains("e.g.") && empty.contains("what to draw"), "the generic placeholder stays for models without a guide")
        state.set(.prompt, "a cat")
        #expect(!Self.screen(state, 80, 24).contains("knows"))
    }

    @Test func theModelPickerSwitchesTheGuide() throws {
        let guide = try #require(PromptGuide.read(model: Self.demo))
        var state = Support.state(prompt: "")
        state.model = "/models/other"
        _ = reduce(&state, .showModels)
        let demo = ModelPicker.Item(entry: ModelCatalog.Entry(model: Self.demo, layout: "diffusers folder", kind: "SD3-style MMDiT", bytes: 1,
                                                              encoders: [], problem: nil), defaults: nil, guide: guide)
        let other = ModelPicker.Item(entry: ModelCatalog.Entry(model: "/models/medium", layout: "diffusers folder", kind: "SD3 Medium", bytes: 1,
                                                               encoders: [], problem: nil), defaults: nil)
        _ = reduce(&state, .modelsFound([demo, other]))
        _ = reduce(&state, .newline)
        #expect(state.model == Self.demo && state.promptGuide == guide)
        #expect(Self.screen(state, 80, 24).contains("e.g. a red circle"))
        _ = reduce(&state, .showModels)
        _ = reduce(&state, .modelsFound([demo, other]))
        _ = reduce(&state, .down)
        _ = reduce(&state, .newline)
        #expect(state.model == "/models/medium" && state.promptGuide == nil)
        #expect(!Self.screen(state, 80, 24).contains("e.g."))
    }
}
