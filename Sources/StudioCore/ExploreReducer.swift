import Foundation
import ImageIO
import SD3

/// F6: a grid of `state.draft.count` consecutive seeds from the one the seed mode picks, rendered one after the
/// other at the draft size and steps. The reducer starts each cell when the previous one finishes.
func explore(_ state: inout StudioState) -> Reaction {
    guard let request = readRequest(&state, seeds: state.draft.count) else { return Reaction() }
    var grid = Exploration(base: request, draft: state.draft)
    grid.rendering = 0
    state.explore = grid
    return startCell(&state, 0)
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
    let request = grid.refinement
    let p = request.parameters
    state.set(.seed, "\(p.seed)")
    state.explore = nil
    state.job = .running(.starting)
    state.status = Status(text: "Refining seed \(p.seed) at \(p.width)×\(p.height), \(p.steps) steps…", isError: false)
    return Reaction(effects: [.start(request)])
}
