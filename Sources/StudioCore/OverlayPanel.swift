/// Where a panel goes on the screen, and so what `render` still draws around it.
enum Placement: Sendable {
    /// The body between the title and the status rows; nothing else is drawn under it (the model picker, the browser).
    case wholeScreen
    /// The left side, in place of the fields; the preview (or the seed grid) stays beside it (LoRAs, backends, training).
    case left
    /// The progress row above the status line; the fields and the preview stay (the recall path).
    case statusRow
}

/// A panel: one case of `Overlay`, opened by a binding (`Binding.opens`) and replaced by the next panel opened. Like
/// htop's panels with their own `eventHandler` (htop's Panel.h), it owns its keys, its drawing and its place; the
/// reducer and `render` reach it through `Overlay.panel` only (docs/architecture.md, Studio: "Adding a panel").
protocol OverlayPanel: Sendable {
    static var placement: Placement { get }
    /// Itself as the case of `Overlay` that holds it.
    var overlay: Overlay { get }
    /// Opens `self`, a fresh panel as its binding gives it (the help has just closed): most put themselves in
    /// `state.overlay` and ask the session for what they list; pressed again, some close instead.
    func open(_ state: inout StudioState) -> Reaction
    /// A key while it is open and the help is not over it: nil lets the main screen have it (F5 still generates).
    /// `self` is the panel as the key found it; changes go through `state`.
    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction?
    /// The session's reports that belong to this panel's concern, open or not (a pull's progress, a training step, a
    /// thumbnail): nil when the action is not one, or when the main reducer should see it too.
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction?
    /// Another panel replaced it (its own keys close it otherwise): what it leaves behind to tidy.
    func replaced(_ state: inout StudioState)
    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout)
}

extension OverlayPanel {
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction? { nil }
    func replaced(_ state: inout StudioState) {}

    /// Its key pressed while it is open closes it: the reaction then, nil when it was not open.
    func closing(_ state: inout StudioState) -> Reaction? {
        guard state.overlay.panel is Self else { return nil }
        state.overlay = .none
        return Reaction()
    }
}

/// A panel as a key opens it (`Action.open`); the binding table makes them with `Binding(keys:opens:help:)`.
public struct PanelOpening: Sendable {
    let panel: any OverlayPanel
}

/// The panels, one at a time, each opened by its key in `Bindings.table`; the help (F1) is a layer drawn over whatever
/// is shown, panel or not, and is not one of them.
public enum Overlay: Sendable {
    case none
    /// The favorites or history browser (F3, F4).
    case browser(Browser)
    /// The path being typed for a recall (Ctrl-O).
    case recallPath(RecallPrompt)
    /// The model picker (F8).
    case models(ModelPicker)
    /// The LoRA panel (F9); the LoRAs themselves are `StudioState.loras`.
    case loras(LoraPanel)
    /// The backend picker (F11).
    case backends(BackendPanel)
    /// The training panel (F12); its fields are `StudioState.trainingForm`, its job `StudioState.training`.
    case training(TrainingPanel)
    /// Where each setting came from (Ctrl-X).
    case sources(SourcesPanel)

    /// The open panel, whichever it is: the one place the reducer and `render` look at the cases.
    var panel: (any OverlayPanel)? {
        switch self {
        case .none: nil
        case let .browser(panel): panel
        case let .recallPath(panel): panel
        case let .models(panel): panel
        case let .loras(panel): panel
        case let .backends(panel): panel
        case let .training(panel): panel
        case let .sources(panel): panel
        }
    }
}

extension StudioState {
    /// The open panel if it is a `P`. Setting one replaces whatever is open; setting nil closes it only if it is the one open.
    subscript<P: OverlayPanel>(panel type: P.Type) -> P? {
        get { overlay.panel as? P }
        set {
            if let newValue {
                overlay = newValue.overlay
            } else if overlay.panel is P {
                overlay = .none
            }
        }
    }
}
