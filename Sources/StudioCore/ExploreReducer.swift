import Foundation
import ImageIO
import SD3

/// F6: a grid of `state.draft.count` consecutive seeds from the one the seed mode picks, rendered one after the
/// other at the draft size and steps. The reducer starts each cell when the previous one finishes.
func explore(_ state: inout StudioState) -> Reaction {
    guard let request = readRequest(&state, seeds: state.draft.count) else { return Reaction() }
    var grid = Exploration(base: request, draft: state.draft)
    grid.rendering = 0
    if state.server != nil { return exploreRemotely(&state, grid) }
    state.explore = grid
    return startCell(&state, 0)
}

/// F6 with a server chosen: every draft at once, spread over the servers (`gridServers`) with one job per seed; each
/// lands in its cell as it arrives (`gridEvent`). Drafts decode with the VAE there (a GPU's VAE is quick, and a
/// server need not have TAESD3). `rendering` stays set while any draft is out, as the local grid's does.
private func exploreRemotely(_ state: inout StudioState, _ grid: Exploration) -> Reaction {
    var grid = grid
    grid.draft.decoder = .vae
    let requests = grid.seeds.indices.map { grid.request($0) }
    guard let effect = remoteEffect(&state, requests, grid: true), case let .startRemote(run) = effect else { return Reaction() }
    state.explore = grid
    state.job = .running(.starting)
    let p = requests[0].parameters
    let on = (run.servers.count == 1 ? run.servers[0].label : "\(run.servers.count) servers") + (run.local == nil ? "" : " + local")
    state.status = Status(text: "Exploring \(grid.seeds.count) seeds on \(on) at \(p.width)×\(p.height), \(p.steps) steps…", isError: false)
    return Reaction(effects: [effect])
}

/// An event of a draft spread over servers: steps show as progress and the cell's preview; a finished draft goes
/// into its cell, in whatever order they come; the grid is done when every cell has its draft.
func gridEvent(_ state: inout StudioState, cell: Int, _ event: GenerationEvent) -> Reaction {
    guard state.job != .cancelling, var grid = state.explore, grid.rendering != nil, grid.seeds.indices.contains(cell) else { return .none }
    switch event {
    case .loading:
        if case .running(.starting) = state.job { state.job = .running(.loading) }
    case let .step(index, total, _, elapsed, preview):
        state.job = .running(.denoising(step: index + 1, total: total, elapsed: elapsed))
        if grid.rendering != cell { (grid.rendering, grid.preview) = (cell, nil) }
        if let preview { grid.preview = preview }
    case let .finished(image, _, seconds):
        grid.images[cell] = image
        grid.seconds += seconds
        if grid.rendering == cell {
            grid.preview = nil
            grid.rendering = grid.images.firstIndex { $0 == nil }
        }
        if grid.finishedCount == grid.seeds.count {
            grid.rendering = nil
            state.explore = grid
            state.job = .finished(seconds: grid.seconds)
            state.status = Status(text: String(format: "%d seeds (%.1f s of rendering) on %@: arrows pick, Enter refines at the full settings, Esc leaves",
                                               grid.seeds.count, grid.seconds, state.backendLabel), isError: false)
            return Reaction()
        }
        state.status = Status(text: "Exploring: \(grid.finishedCount) of \(grid.seeds.count) seeds done (seed \(grid.seeds[cell]) just arrived)", isError: false)
    default:
        return .none
    }
    state.explore = grid
    return Reaction()
}

private func startCell(_ state: inout StudioState, _ index: Int) -> Reaction {
    guard let grid = state.explore else { return Reaction() }
    let request = grid.request(index)
    state.explore?.rendering = index
    state.explore?.preview = nil
    state.job = .running(.starting)
    state.status = Status(text: "Exploring seed \(request.parameters.seed) (\(index + 1) of \(grid.seeds.count)) at "
        + "\(request.parameters.width)×\(request.parameters.height), \(request.parameters.steps) steps…", isError: false)
    return Reaction(effects: [.start(request)])
}

/// A draft finished: it goes into its cell (drafts are not saved) and the next cell starts.
func draftFinished(_ state: inout StudioState, image: RGBImage, seconds: Double) -> Reaction {
    guard var grid = state.explore, let index = grid.rendering else { return .none }
    grid.images[index] = image
    grid.seconds += seconds
    (grid.rendering, grid.preview) = (nil, nil)
    state.explore = grid
    if index + 1 < grid.seeds.count { return startCell(&state, index + 1) }
    state.job = .finished(seconds: grid.seconds)
    state.status = Status(text: String(format: "%d seeds in %.1f s: arrows pick, Enter refines at the full settings, Esc leaves",
                                       grid.seeds.count, grid.seconds), isError: false)
    return Reaction()
}

/// Keys while the grid is shown: arrows move the pick, Enter refines it; other keys edit the fields as usual.
func gridKey(_ state: inout StudioState, _ action: Action) -> Reaction? {
    guard var grid = state.explore else { return nil }
    switch action {
    case .left: grid.move(dx: -1, dy: 0)
    case .right: grid.move(dx: 1, dy: 0)
    case .up: grid.move(dx: 0, dy: -1)
    case .down: grid.move(dx: 0, dy: 1)
    case .newline: return refine(&state)
    default: return nil
    }
    state.explore = grid
    return Reaction()
}

/// Enter: the picked seed at the grid's full settings, saved like any generation; the grid closes.
private func refine(_ state: inout StudioState) -> Reaction {
    guard let grid = state.explore else { return .none }
    guard !state.isRunning else {
        state.status = Status(text: "The grid is still rendering: wait, or Esc to cancel it", isError: true)
        return Reaction()
    }
    if state.server == nil, let refusal = state.trainingRefusesGeneration {
        state.status = Status(text: refusal, isError: true)
        return Reaction()
    }
    let request = grid.refinement
    let p = request.parameters
    var effect = Effect.start(request)
    if state.server != nil {
        guard let remote = remoteEffect(&state, [request], grid: false) else { return Reaction() }
        effect = remote
    }
    state.set(.seed, "\(p.seed)")
    state.record(.seed, .studio, "seed grid")
    state.explore = nil
    state.job = .running(.starting)
    state.status = Status(text: "Refining seed \(p.seed) at \(p.width)×\(p.height), \(p.steps) steps\(state.server.map { " on \($0.label)" } ?? "")…", isError: false)
    return Reaction(effects: [effect])
}
