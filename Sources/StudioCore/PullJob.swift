import Foundation
import SD3

/// A model being pulled from the Hugging Face Hub (F8, a repo id typed that is not cached): the session runs
/// `sd3 models pull`'s code in the background and reports its progress line; the status line shows it.
public struct PullJob: Sendable, Equatable {
    public var repo: String
    /// "1.2 GB / 4.5 GB  35.2 MB/s  ETA 1m32s  3/12 files" (PullProgress), empty until the first report.
    public var progress = ""
    public var cancelling = false
    public init(repo: String) { self.repo = repo }

    /// The status line while it runs: the numbers first, so a narrow terminal cuts the repo id rather than them.
    public var line: String {
        if cancelling { return "Cancelling the pull of \(repo)…" }
        if progress.isEmpty { return "⇣ \(repo): asking the hub… · Esc cancels" }
        return "⇣ \(progress) · \(repo) · Esc cancels"
    }
}

/// Enter on the picker's pull row.
func startPull(_ state: inout StudioState, _ repo: String) -> Reaction {
    if let running = state.pull {
        state.status = Status(text: "Already pulling \(running.repo): one pull at a time (Esc cancels it)", isError: true)
        return Reaction()
    }
    state.pull = PullJob(repo: repo)
    let skipT5 = state.t5 == .off
    state.status = Status(text: "Pulling \(repo) into the Hugging Face cache" + (skipT5 ? " without T5 (the T5 field is off)" : ""), isError: false)
    return Reaction(effects: [.pull(repo: repo, skipT5: skipT5)])
}

/// The session's reports of a pull (the picker's `receive`): nil for other actions.
func receivePull(_ state: inout StudioState, _ action: Action) -> Reaction? {
    switch action {
    case let .pullProgress(repo, progress):
        guard state.pull?.repo == repo, state.pull?.cancelling == false else { return Reaction.none }
        state.pull?.progress = progress
        return Reaction()
    case let .pullFinished(repo, snapshot):
        state.pull = nil
        state.pulled = repo
        state.status = Status(text: "Pulled \(repo) into \(snapshot): Enter in the model list (F8) switches to it", isError: false)
        // An open picker lists it at once, picked.
        return Reaction(effects: state.models == nil ? [] : [.scanModels])
    case let .pullStopped(repo, error):
        state.pull = nil
        state.status = error.map { Status(text: "Pull of \(repo): \($0)", isError: true) }
            ?? Status(text: "Pull of \(repo) cancelled: what arrived is kept, pull it again to resume", isError: false)
        return Reaction()
    default:
        return nil
    }
}

/// Esc with nothing else to cancel: stops the pull.
func cancelPull(_ state: inout StudioState) -> Reaction? {
    guard let pull = state.pull, !pull.cancelling else { return nil }
    state.pull?.cancelling = true
    return Reaction(effects: [.cancelPull])
}
