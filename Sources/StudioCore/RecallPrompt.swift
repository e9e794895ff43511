import Foundation

/// The path of a PNG to recall (Ctrl-O), typed on the progress row; Enter reads it off the main actor (`Effect.recall`)
/// and the answer fills the fields (`StudioState.recall`).
public struct RecallPrompt: Sendable, Equatable {
    public var path = TextEditor()
    public init() {}
}

extension RecallPrompt: OverlayPanel {
    static let placement = Placement.statusRow
    var overlay: Overlay { .recallPath(self) }

    func open(_ state: inout StudioState) -> Reaction {
        state.recallPath = self
        state.status = Status(text: "Recall a PNG (ours, A1111/Forge, ComfyUI, stable-diffusion.cpp, InvokeAI): type its path, Enter", isError: false)
        return Reaction()
    }

    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction? {
        var editor = path
        // A path has no line breaks: any pasted with it are dropped.
        if editor.apply(action, lineBreak: "") {
            state.recallPath?.path = editor
            return Reaction()
        }
        switch action {
        case _ where action.actsInEveryPanel: return nil
        case .newline:
            state.recallPath = nil
            let path = editor.text.trimmingCharacters(in: .whitespaces)
            guard !path.isEmpty else { return Reaction() }
            let expanded = (path as NSString).expandingTildeInPath
            state.recalling = expanded
            state.status = Status(text: "Reading \(expanded)… (Esc cancels)", isError: false)
            return Reaction(effects: [.recall(path: expanded)])
        case .cancel:
            state.recallPath = nil
            state.status = Status(text: "Recall cancelled", isError: false)
            return Reaction()
        default: return Reaction.none
        }
    }

    /// The file's parameters, unless Esc dropped the recall (`StudioState.recalling` is then nil); a read that failed
    /// ends it (the main reducer shows why).
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction? {
        switch action {
        case let .recalled(parameters, source):
            guard state.recalling != nil else { return Reaction.none }
            state.recalling = nil
            return Reaction(effects: state.recall(parameters, from: source))
        case .failed:
            state.recalling = nil
            return nil
        default:
            return nil
        }
    }

    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) {
        let x = buffer.put("Recall PNG: ", x: 0, y: layout.progressRow, role: .fieldLabel)
        drawLine(path, x: x, y: layout.progressRow, width: layout.columns - x, &buffer)
    }
}

extension StudioState {
    public var recallPath: RecallPrompt? {
        get { self[panel: RecallPrompt.self] }
        set { self[panel: RecallPrompt.self] = newValue }
    }
}
