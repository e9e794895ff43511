import ComfyUI
import SD3

/// The backend picker (F11), while it is open: it takes the place of the fields, the preview stays beside it. Row 0 is
/// the local engine, row i + 1 the server `StudioState.backends[i]` with what the session learnt of it on opening.
public struct BackendPanel: Sendable, Equatable {
    public var selected = 0
    public init(selected: Int = 0) { self.selected = selected }
}

extension StudioState {
    /// Where the next image renders: "local" or "comfyui@HOST:PORT".
    public var backendLabel: String { server?.label ?? "local" }

    /// The local model's folder or file name.
    var localModelName: String { model.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "no model" }

    /// Why the chosen server cannot render: its entry names no model.
    var serverWithoutModel: String? {
        guard let server, server.model == nil else { return nil }
        return "No model for \(server.label): set model = \"FILE\" in [[backends]] '\(server.name)', or F11 picks another backend"
    }
}

/// The backend picker as a panel on the left.
extension BackendPanel: OverlayPanel {
    static let placement = Placement.left
    var overlay: Overlay { .backends(self) }

    /// F11 again closes it; opening asks every server for its state and selects the backend in use.
    func open(_ state: inout StudioState) -> Reaction {
        if let closed = closing(&state) { return closed }
        state.backendPanel = BackendPanel(selected: state.backend.map { $0 + 1 } ?? 0)
        guard !state.backends.isEmpty else {
            state.status = Status(text: "No ComfyUI servers: add [[backends]] entries to the config, or start with --backend comfyui://HOST:PORT", isError: false)
            return Reaction()
        }
        for index in state.backends.indices { state.backendStatus[index] = .checking }
        state.status = Status(text: "Backends: Up/Down and Enter choose where images render, Esc closes", isError: false)
        return Reaction(effects: [.probeBackends])
    }

    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction? {
        switch action {
        case .up:
            state.backendPanel?.selected = max(0, selected - 1)
        case .down:
            let last = state.backends.count
            state.backendPanel?.selected = min(last, selected + 1)
        case .cancel:
            state.backendPanel = nil
        case .newline:
            choose(&state, row: selected)
        case .insert(" ") where selected == 0:
            state.localDrafts.toggle()
            state.status = Status(text: state.localDrafts
                ? "The local engine also takes drafts when F6 spreads a grid over servers (with \(state.model.map { _ in state.localModelName } ?? "no model"))"
                : "Grids on servers leave the local engine out", isError: false)
        case .insert, .backspace, .delete, .left, .right, .home, .end, .wordLeft, .wordRight, .deleteToLineStart, .deleteToLineEnd,
             .nextField, .previousField:
            return Reaction.none  // nothing to type in the picker
        default:
            return nil
        }
        return Reaction()
    }

    /// What a server answered, open or not (the header and a grid's servers use it).
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction? {
        guard case let .backendProbed(index, status) = action else { return nil }
        guard state.backends.indices.contains(index) else { return Reaction.none }
        state.backendStatus[index] = status
        return Reaction(redraw: state.backendPanel != nil)
    }

    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) { drawBackendPanel(state, self, &buffer, layout.left) }
}

extension StudioState {
    public var backendPanel: BackendPanel? {
        get { self[panel: BackendPanel.self] }
        set { self[panel: BackendPanel.self] = newValue }
    }
}

/// Enter: the row becomes where images render, from the next one on; the picker closes.
private func choose(_ state: inout StudioState, row: Int) {
    state.backendPanel = nil
    guard row > 0, let server = state.backends[safe: row - 1] else {
        state.backend = nil
        state.status = Status(text: "Images render on the local engine (\(state.localModelName))", isError: false)
        return
    }
    state.backend = row - 1
    if server.model == nil {
        state.status = Status(text: "No model for \(server.label): set model = \"FILE\" in [[backends]] '\(server.name)' to render there", isError: true)
    } else if case let .unreachable(reason)? = state.backendStatus[row - 1] {
        state.status = Status(text: "Images render on \(server.label) (\(server.model!)), which did not answer: \(reason)", isError: true)
    } else {
        state.status = Status(text: "Images render on \(server.label) with \(server.model!)", isError: false)
    }
}

/// The servers a grid's drafts spread over: the chosen one first, then every other one that has a model and did not
/// fail to answer the picker (a server not yet asked is tried: JobQueue gives a job it cannot take to another).
func gridServers(_ state: StudioState, chosen: Int) -> [StudioBackend] {
    var servers = [state.backends[chosen]]
    for (index, server) in state.backends.enumerated() where index != chosen && server.model != nil {
        if case .unreachable? = state.backendStatus[index] { continue }
        servers.append(server)
    }
    return servers
}

/// The effect that renders `requests` on the chosen server (`state.backend`): one image, or a grid's drafts spread
/// over `gridServers`. nil after putting the reason in the status line.
func remoteEffect(_ state: inout StudioState, _ requests: [GenerationRequest], grid: Bool) -> Effect? {
    guard let chosen = state.backend, let server = state.server, let first = requests.first else { return nil }
    if let problem = state.serverWithoutModel {
        state.status = Status(text: problem, isError: true)
        return nil
    }
    if let reason = ComfyUIWorkflow.unsupported(first.parameters) {
        state.status = Status(text: "\(server.label): \(reason)", isError: true)
        return nil
    }
    let jobs = requests.map { request -> ComfyUIJob in
        var job = ComfyUIJob(parameters: request.parameters, model: server.model!)
        // The server's LoRAs by file name: the local file's name, or the recorded name of one not on this machine.
        job.loras = request.loras.map { .init(name: $0.path.split(separator: "/").last.map(String.init) ?? $0.path, strength: $0.strength) }
        return job
    }
    let servers = grid ? gridServers(state, chosen: chosen) : [server]
    var local: LocalDrafts?
    // The local engine joins a grid when asked to and able to: a local model, every LoRA that is on a file here, and no
    // training job holding the cores.
    if grid, state.localDrafts, state.training?.isActive != true, let model = state.model, !state.loras.contains(where: { $0.enabled && $0.path == nil }) {
        local = LocalDrafts(model: model, loras: state.loras.filter(\.enabled).map { LoraChoice(path: $0.path!, strength: $0.strength) },
                            t5: first.t5, precision: first.precision)
    }
    return .startRemote(RemoteRun(jobs: jobs, servers: servers, initImagePath: first.initImagePath, useT5: first.t5 != .off, grid: grid, local: local))
}
