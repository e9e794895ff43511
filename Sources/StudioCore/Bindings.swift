/// The one binding table (docs/architecture.md, Studio): keys → actions, in the order the help overlay lists them,
/// with the panel each one opens and the panel a key is scoped to. Printable characters and pastes insert text and
/// are not listed.
public struct Binding: Sendable {
    public var keys: [Key]
    public var action: Action
    public var help: String
    /// The only panel the key acts in; elsewhere it does nothing.
    var scope: (any OverlayPanel.Type)? = nil

    init(keys: [Key], action: Action, help: String, scope: (any OverlayPanel.Type)? = nil) {
        (self.keys, self.action, self.help, self.scope) = (keys, action, help, scope)
    }

    /// A key that opens `panel`, as it opens (`Action.open`: the reducer closes the help and calls its `open`).
    init(keys: [Key], opens panel: any OverlayPanel, help: String) {
        self.init(keys: keys, action: .open(PanelOpening(panel: panel)), help: help)
    }

    /// The panel the key opens.
    var opens: (any OverlayPanel)? {
        guard case let .open(opening) = action else { return nil }
        return opening.panel
    }
}

public enum Bindings {
    public static let table: [Binding] = [
        Binding(keys: [.function(5), .ctrl("g")], action: .generate, help: "generate with the current settings"),
        Binding(keys: [.function(6)], action: .explore, help: "explore seeds: a grid of quick drafts"),
        Binding(keys: [.escape], action: .cancel, help: "cancel the generation; close help, a panel or the seed grid"),
        Binding(keys: [.function(2)], action: .toggleFavorite, help: "star / unstar the current image (in a browser: the selected one)"),
        Binding(keys: [.function(3)], opens: Browser(kind: .favorites), help: "favorites browser: type to search, Enter recalls"),
        Binding(keys: [.function(4)], opens: Browser(kind: .history), help: "history browser: type to search, Enter recalls"),
        Binding(keys: [.ctrl("n")], action: .editNote, help: "edit the note of the selected favorite (browser)",
                scope: Browser.self),
        Binding(keys: [.ctrl("o")], opens: RecallPrompt(), help: "recall the settings of a PNG: type its path"),
        Binding(keys: [.function(1)], action: .toggleHelp, help: "this help"),
        Binding(keys: [.function(7)], action: .cycleTheme, help: "next colour theme"),
        Binding(keys: [.function(8)], opens: ModelPicker(), help: "choose or pull a model"),
        // Short, so it shares the F7/F8 line of the help at 80×24.
        Binding(keys: [.function(11)], opens: BackendPanel(), help: "CPU or ComfyUI"),
        Binding(keys: [.function(9)], opens: LoraPanel(), help: "LoRAs: add, on/off (Space), strength (Left/Right), remove (Delete)"),
        // Short, so the two share a line of the help at 80×24 (quitting cancels a running generation).
        Binding(keys: [.function(10), .ctrl("q")], action: .quit, help: "quit"),
        Binding(keys: [.ctrl("c")], action: .interrupt, help: "stop a run; twice: quit"),
        // Short, so it shares a line of the help with Tab and Shift-Tab at 80×24.
        Binding(keys: [.function(12), .ctrl("t")], opens: TrainingPanel(), help: "train a LoRA"),
        Binding(keys: [.tab], action: .nextField, help: "next field"),
        Binding(keys: [.backTab], action: .previousField, help: "previous field"),
        Binding(keys: [.left], action: .left, help: "cursor left; previous choice or grid seed"),
        Binding(keys: [.right], action: .right, help: "cursor right; next choice or grid seed"),
        Binding(keys: [.up], action: .up, help: "row up (also in the grid)"),
        Binding(keys: [.down], action: .down, help: "row down (also in the grid)"),
        Binding(keys: [.home, .ctrl("a")], action: .home, help: "start of line"),
        Binding(keys: [.end, .ctrl("e")], action: .end, help: "end of line"),
        Binding(keys: [.ctrlLeft, .alt("b")], action: .wordLeft, help: "previous word"),
        Binding(keys: [.ctrlRight, .alt("f")], action: .wordRight, help: "next word"),
        Binding(keys: [.backspace], action: .backspace, help: "delete before the cursor"),
        // Short, so it shares Backspace's line of the help at 80×24.
        Binding(keys: [.ctrl("x")], opens: SourcesPanel(), help: "where settings came from"),
        Binding(keys: [.delete, .ctrl("d")], action: .delete, help: "delete at the cursor; in a browser the image (asks y/n)"),
        Binding(keys: [.ctrl("u")], action: .deleteToLineStart, help: "delete to the line's start"),
        Binding(keys: [.ctrl("k")], action: .deleteToLineEnd, help: "delete to the line's end"),
        Binding(keys: [.enter], action: .newline, help: "new line in a prompt; next field; recall (browser); refine (grid)"),
    ]

    static let lookup: [Key: Action] = {
        var map: [Key: Action] = [:]
        for binding in table { for key in binding.keys where map[key] == nil { map[key] = binding.action } }
        return map
    }()

    static let byAction: [String: Binding] = {
        var map: [String: Binding] = [:]
        for binding in table { if let name = binding.action.plainName { map[name] = binding } }
        return map
    }()

    /// The binding a key action came from (nil for text and for the session's reports).
    static func binding(for action: Action) -> Binding? { action.plainName.flatMap { byAction[$0] } }

    /// Every panel type, once each, in table order: the reducer gives them the session's reports.
    static let panels: [any OverlayPanel.Type] = {
        var types: [any OverlayPanel.Type] = []
        for case let panel? in table.map(\.opens) where !types.contains(where: { $0 == type(of: panel) }) { types.append(type(of: panel)) }
        return types
    }()

    /// The action for a key: the table's, or text insertion for characters and pastes.
    public static func action(for key: Key) -> Action? {
        if let action = lookup[key] { return action }
        switch key {
        case let .character(c): return .insert(String(c))
        case let .paste(text): return .insert(text)
        default: return nil
        }
    }
}

extension Action {
    /// The case's name for an action without a payload ("showLoras", as the binding table's are); nil for the others
    /// (text, the session's reports), so a report's image is never turned into text.
    var plainName: String? { Mirror(reflecting: self).children.isEmpty ? String(describing: self) : nil }
}
