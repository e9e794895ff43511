import Foundation
import ImageMetadata
import SD3

/// One LoRA in the studio's list: applied to every generation while it is on, at its strength, by the engine's
/// run-time path, so changing the list never reloads the model.
public struct LoraEntry: Sendable, Equatable {
    /// The file name without `.safetensors` (what the PNG records).
    public var name: String
    /// nil: a recalled image names this LoRA but it was not found on this machine.
    public var path: String?
    public var strength: Double
    public var enabled: Bool
    /// A1111's short hash ("" when unknown) and the key layout (kohya, diffusers, ComfyUI; "" when not read).
    public var hash: String
    public var layout: String

    public init(name: String, path: String?, strength: Double = 1, enabled: Bool = true, hash: String = "", layout: String = "") {
        (self.name, self.path, self.strength, self.enabled, self.hash, self.layout) = (name, path, strength, enabled, hash, layout)
    }
}

/// The LoRA panel (F9), while it is open: it takes the place of the fields, the preview stays beside it.
public struct LoraPanel: Sendable, Equatable {
    /// The LoRA files in the LoRA folders; nil until the session's scan has answered.
    public var candidates: [LoraCatalog.Candidate]?
    /// The first folder the scan looked in, to say where LoRA files go.
    public var folder = ""
    /// A row of the list, then of the candidates not in it.
    public var selected = 0
    /// A path or name being typed (Enter adds it), or a number (Enter sets the selected LoRA's strength).
    public var input = TextEditor()
    public init() {}
}

public enum LoraStrength {
    /// One Left/Right press.
    public static let step = 0.05
    public static let range = -4.0...4.0

    /// Two decimals, so twenty steps down from 1 is exactly 0.
    static func moved(_ strength: Double, by steps: Int) -> Double {
        let value = ((strength + Double(steps) * step) * 100).rounded() / 100
        return min(range.upperBound, max(range.lowerBound, value))
    }
}

extension StudioState {
    /// The candidates the panel offers: those not already in the list.
    public var loraCandidates: [LoraCatalog.Candidate] {
        (loraPanel?.candidates ?? []).filter { candidate in !loras.contains { $0.path == candidate.path } }
    }

    /// The LoRAs a generation applies, or why it cannot start.
    func enabledLoras() -> Result<[LoraChoice], FieldError> {
        if pendingRecall != nil { return .failure(FieldError(description: "Still looking for the recalled image's LoRAs: a moment")) }
        let enabled = loras.filter(\.enabled)
        // A server looks LoRAs up by file name in its own loras folder: one missing here may be there.
        if server != nil { return .success(enabled.map { LoraChoice(path: $0.path ?? $0.name + ".safetensors", strength: $0.strength) }) }
        if let missing = enabled.first(where: { $0.path == nil }) {
            return .failure(FieldError(description: "LoRA \(missing.name) is not on this machine: F9, then add its file or turn it off (Space)"))
        }
        return .success(enabled.map { LoraChoice(path: $0.path!, strength: $0.strength) })
    }

    /// The settings box's title: what the LoRA list applies.
    var loraSummary: String {
        let enabled = loras.filter(\.enabled)
        if enabled.isEmpty { return loras.isEmpty ? "" : " · LoRAs off (F9)" }
        return " · LoRA " + enabled.map { "\($0.name)\($0.path == nil ? " (missing)" : "") \(RecalledParameters.number($0.strength))" }
            .joined(separator: ", ")
    }
}

/// The LoRA list as a panel on the left; the LoRAs themselves stay in `StudioState.loras` while it is closed.
extension LoraPanel: OverlayPanel {
    static let placement = Placement.left
    var overlay: Overlay { .loras(self) }

    /// F9 again closes it.
    func open(_ state: inout StudioState) -> Reaction {
        if let closed = closing(&state) { return closed }
        state.loraPanel = self
        state.status = Status(text: "LoRAs: Space on/off, Left/Right strength, Delete removes, type a path or pick a file and Enter adds", isError: false)
        return Reaction(effects: [.scanLoras])
    }

    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction? {
        action.actsInEveryPanel ? nil : panelKey(&state, self, action)
    }

    /// The folders' scan, a LoRA read (typed here, or trained), and a recalled image's LoRAs looked for.
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction? {
        switch action {
        case let .lorasFound(candidates, folder):
            guard state.loraPanel != nil else { return Reaction.none }
            state.loraPanel?.candidates = candidates
            state.loraPanel?.folder = folder
            return Reaction()
        case let .loraRead(entry):
            addLora(&state, entry)
            return Reaction()
        case let .lorasLocated(locations, folder, source):
            located(&state, locations, folder: folder, from: source)
            return Reaction()
        default:
            return nil
        }
    }

    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) { drawLoraPanel(state, self, &buffer, layout.left) }
}

extension StudioState {
    public var loraPanel: LoraPanel? {
        get { self[panel: LoraPanel.self] }
        set { self[panel: LoraPanel.self] = newValue }
    }
}

/// Keys in the panel. While something is typed the editing keys edit it; otherwise they act on the selected row.
private func panelKey(_ state: inout StudioState, _ panel: LoraPanel, _ action: Action) -> Reaction {
    var input = panel.input
    let typing = !input.characters.isEmpty
    let index = panel.selected
    let inList = state.loras.indices.contains(index)
    switch action {
    case .insert(" ") where !typing:
        guard inList else { return .none }
        state.loras[index].enabled.toggle()
    case .left where !typing, .right where !typing:
        guard inList else { return .none }
        state.loras[index].strength = LoraStrength.moved(state.loras[index].strength, by: action.isLeft ? -1 : 1)
        state.loras[index].enabled = true
    case .delete where !typing:
        guard inList else { return .none }
        let removed = state.loras.remove(at: index)
        let rows = rowCount(state)
        state.loraPanel?.selected = max(0, min(index, rows - 1))
        state.status = Status(text: "Removed LoRA \(removed.name)", isError: false)
    case .up:
        state.loraPanel?.selected = max(0, index - 1)
    case .down:
        let rows = rowCount(state)
        state.loraPanel?.selected = max(0, min(rows - 1, index + 1))
    case .cancel:
        if typing { state.loraPanel?.input = TextEditor() } else { state.loraPanel = nil }
    case .newline:
        return enter(&state, panel)
    default:
        guard input.apply(action, lineBreak: "") else { return .none }
        state.loraPanel?.input = input
    }
    return Reaction()
}

/// Enter: adds what was typed, or sets the selected LoRA's strength to a typed number; adds the selected file;
/// turns the selected list entry on or off.
private func enter(_ state: inout StudioState, _ panel: LoraPanel) -> Reaction {
    let text = panel.input.text.trimmingCharacters(in: .whitespaces)
    let index = panel.selected
    if !text.isEmpty {
        state.loraPanel?.input = TextEditor()
        if let strength = Double(text), state.loras.indices.contains(index) {
            guard strength.isFinite, LoraStrength.range.contains(strength) else {
                state.status = Status(text: "LoRA strength \(text): expected a number from \(Int(LoraStrength.range.lowerBound)) to \(Int(LoraStrength.range.upperBound))", isError: true)
                return Reaction()
            }
            (state.loras[index].strength, state.loras[index].enabled) = (strength, true)
            return Reaction()
        }
        state.status = Status(text: "Reading LoRA \(text)…", isError: false)
        return Reaction(effects: [.readLora(text)])
    }
    if state.loras.indices.contains(index) {
        state.loras[index].enabled.toggle()
        return Reaction()
    }
    guard let candidate = state.loraCandidates[safe: index - state.loras.count] else { return .none }
    state.status = Status(text: "Reading LoRA \(candidate.name)…", isError: false)
    return Reaction(effects: [.readLora(candidate.path)])
}

private func rowCount(_ state: StudioState) -> Int { state.loras.count + state.loraCandidates.count }

/// A LoRA read by the session joins the list on, at strength 1 (one already listed from that file is turned on again).
func addLora(_ state: inout StudioState, _ entry: LoraEntry) {
    var entry = entry
    if let i = state.loras.firstIndex(where: { $0.path == entry.path }) {
        entry.strength = state.loras[i].strength
        state.loras[i] = entry
        state.loraPanel?.selected = i
    } else {
        state.loras.append(entry)
        let last = state.loras.count - 1
        state.loraPanel?.selected = last
    }
    let about = [entry.layout, entry.hash].filter { !$0.isEmpty }.joined(separator: ", ")
    state.status = Status(text: "LoRA \(entry.name) (\(about)) on at \(RecalledParameters.number(entry.strength)); it applies from the next image",
                          isError: false)
}

/// A recalled image's LoRAs, as the session found them: they come first, on, in the recorded order and strengths (the
/// order the engine sums them in); every other LoRA is turned off. One not found stays in the list without a file, so a
/// generation refuses to start rather than make a different image.
private func located(_ state: inout StudioState, _ locations: [LoraCatalog.Location], folder: String, from source: String) {
    let recalled = state.pendingRecall ?? "Recalled \(source)"
    state.pendingRecall = nil
    var rest = state.loras, found: [LoraEntry] = []
    for location in locations {
        let record = location.record
        let index = rest.firstIndex { $0.path != nil && $0.path == location.path } ?? rest.firstIndex { $0.path == nil && $0.name == record.name }
        var entry = index.map { rest.remove(at: $0) } ?? LoraEntry(name: record.name, path: location.path)
        (entry.path, entry.strength, entry.enabled, entry.hash) = (location.path, record.strength, true, record.hash)
        found.append(entry)
    }
    for i in rest.indices { rest[i].enabled = false }
    state.loras = found + rest
    let missing = locations.filter { $0.path == nil }, changed = locations.filter { $0.path != nil && !$0.hashMatches }
    if let first = missing.first {
        let names = missing.map(\.record.name).joined(separator: ", ")
        let recorded = first.record.path.map { "not at \($0) nor" } ?? "not"
        state.status = Status(text: "Recalled \(source): LoRA \(names) not found (\(recorded) in \(folder)): F9 to add it or turn it off", isError: true)
    } else if let first = changed.first {
        state.status = Status(text: "Recalled \(source): LoRA \(first.record.name) at \(first.path!) is not the file the image was made with (hash \(first.record.hash)): it may look different",
                              isError: true)
    } else {
        let list = locations.map { "\($0.record.name) \(RecalledParameters.number($0.record.strength))" }.joined(separator: ", ")
        state.status = Status(text: "\(recalled) · LoRA \(list)", isError: false)
    }
}

private extension Action {
    var isLeft: Bool {
        if case .left = self { return true }
        return false
    }
}
