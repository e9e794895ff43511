import Foundation
import ImageIO
import SD3

/// The training panel's fields, in the order Tab visits them.
public enum TrainingField: Int, CaseIterable, Sendable {
    case data, captions, instancePrompt, resolution, rank, steps, learningRate, every, validationPrompt, output

    public var label: String {
        switch self {
        case .data: "Data folder"
        case .captions: "Captions"
        case .instancePrompt: "Instance"
        case .resolution: "Resolution"
        case .rank: "Rank"
        case .steps: "Steps"
        case .learningRate: "Learn rate"
        case .every: "Every"
        case .validationPrompt: "Validation"
        case .output: "Output"
        }
    }
}

/// Where the captions come from: each image's same-name .txt (an image without one takes the instance prompt), or the
/// instance prompt for every image.
public enum CaptionMode: String, CaseIterable, Sendable {
    case files = ".txt files"
    case instancePrompt = "instance prompt"
}

/// The panel's fields as typed. The defaults are `sd3 train-lora`'s (rank 4, 500 steps, lr 1e-4); the resolution is
/// set from the Width field when the panel first opens (the model's defaults.json size).
public struct TrainingForm: Sendable, Equatable {
    public var editors: [TrainingField: TextEditor] = [:]
    public var captions = CaptionMode.files
    /// False until the panel has opened once (then the resolution has its first value).
    public var prepared = false

    public init() {
        for field in TrainingField.allCases where field != .captions { editors[field] = TextEditor() }
        set(.resolution, "512")
        set(.rank, "4")
        set(.steps, "500")
        set(.learningRate, "1e-4")
        set(.every, "50")
    }

    public func text(_ field: TrainingField) -> String { editors[field]?.text ?? "" }
    public mutating func set(_ field: TrainingField, _ text: String) { editors[field] = TextEditor(text) }
}

/// The training panel (F12), while it is open: it takes the place of the fields, the preview beside it shows the
/// validation images.
public struct TrainingPanel: Sendable, Equatable {
    public var focus = TrainingField.data
    public init(focus: TrainingField = .data) { self.focus = focus }
}

/// What the session reads from the panel to train: paths as typed (the session expands `~`), numbers checked.
public struct TrainingRequest: Sendable, Equatable {
    public var model: String
    public var data: String
    public var captionFiles: Bool
    public var instancePrompt: String?
    public var resolution: Int
    public var rank: Int
    public var steps: Int
    public var learningRate: Double
    /// Steps between checkpoints and between validation images.
    public var every: Int
    public var validationPrompt: String?
    /// The LoRA file (NAME.safetensors); its checkpoint is NAME.checkpoint beside it.
    public var output: String
    public var seed: UInt64
    public var t5: T5Mode
    public var precision: PrecisionChoice

    /// The file name without `.safetensors`, as the LoRA list names it.
    public var name: String { ((output as NSString).lastPathComponent as NSString).deletingPathExtension }
}

/// The session's reports of a training job, in the order the job makes them.
public enum TrainingReport: Sendable {
    /// A slow part before the first step: loading the model, encoding the images or the captions.
    case preparing(String)
    /// A line worth the status line: images skipped, where it resumed.
    case note(String)
    case started(step: Int, steps: Int, images: Int)
    case step(step: Int, steps: Int, loss: Float, secondsPerStep: Double)
    case checkpoint(path: String, step: Int)
    case validation(step: Int, image: RGBImage, path: String)
    /// The LoRA was written; `lora` is it as the LoRA list reads it, or `problem` says why it could not be read.
    case finished(output: String, steps: Int, seconds: Double, lora: LoraEntry?, problem: String?)
    /// Esc: the checkpoint holds `step` (nil: stopped before the first step, with no checkpoint to keep).
    case stopped(step: Int, steps: Int, checkpoint: String?)
    case failed(String)
}

/// The job the panel started: its request, where it is, the losses so far (for the sparkline) and the last
/// validation image. Kept after it ends, so the panel still shows how it went.
public struct TrainingRun: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case preparing(String)
        case training
        case stopping
        case finished
        case stopped
        case failed(String)
    }

    public struct Validation: Sendable, Equatable {
        public var step: Int
        public var image: RGBImage
        public var path: String
    }

    public var request: TrainingRequest
    public var phase: Phase
    /// The first step of this run (a resumed run starts at its checkpoint's), the last step done, and the total.
    public var firstStep = 0
    public var step = 0
    public var steps: Int
    /// One loss per step of this run.
    public var losses: [Float] = []
    public var secondsPerStep: Double?
    /// The last checkpoint written, and its step.
    public var checkpointPath: String?
    public var checkpointStep = 0
    public var validation: Validation?

    public init(request: TrainingRequest) {
        (self.request, self.steps, phase) = (request, request.steps, .preparing("starting"))
    }

    /// Preparing, training or stopping: one job at a time.
    public var isActive: Bool {
        switch phase {
        case .preparing, .training, .stopping: true
        case .finished, .stopped, .failed: false
        }
    }

    public var eta: Double? { secondsPerStep.map { $0 * Double(steps - step) } }
}

extension StudioState {
    /// The picture of the preview pane: the training job's last validation image while its panel is open, else the
    /// generation's preview (the pixel protocols draw the same one).
    public var paneImage: RGBImage? {
        if trainingPanel != nil, let validation = training?.validation { return validation.image }
        return preview
    }

    /// Why a local generation cannot start while a training job runs: both would share the same CPU cores (each at
    /// half speed) and hold a copy of the model in memory; training keeps the machine, a local image waits. A ComfyUI
    /// server (F11) still renders.
    var trainingRefusesGeneration: String? {
        guard let training, training.isActive else { return nil }
        let at = training.phase == .training ? " (step \(training.step)/\(training.steps))" : ""
        return "Training \(training.request.name) is running\(at): local images wait until it ends (it uses every core); F12 then Esc stops it"
    }
}

/// The training panel on the left; its fields and its job outlive it (`StudioState.trainingForm`, `.training`).
extension TrainingPanel: OverlayPanel {
    static let placement = Placement.left
    var overlay: Overlay { .training(self) }

    /// F12 again closes it; the first opening takes the resolution from the Width field.
    func open(_ state: inout StudioState) -> Reaction {
        if let closed = closing(&state) { return closed }
        if !state.trainingForm.prepared {
            state.trainingForm.prepared = true
            if let width = Int(state.text(.width)) { state.trainingForm.set(.resolution, "\(width)") }
        }
        state.trainingPanel = self
        if state.training?.isActive != true {
            state.status = Status(text: "Train a LoRA: Tab moves between fields, Enter starts (or resumes from the output's checkpoint), Esc closes",
                                  isError: false)
        }
        return Reaction()
    }

    func reduce(_ state: inout StudioState, _ action: Action) -> Reaction? {
        switch action {
        case .nextField, .previousField:
            state.trainingPanel?.focus = movedFocus(focus, by: action.isNext ? 1 : -1)
        case .down:
            state.trainingPanel?.focus = movedFocus(focus, by: 1)
        case .up:
            state.trainingPanel?.focus = movedFocus(focus, by: -1)
        case .cancel:
            if let reaction = stopTraining(&state) { return reaction }
            state.trainingPanel = nil
        case .newline:
            return startTraining(&state)
        case .left where focus == .captions, .right where focus == .captions, .insert(" ") where focus == .captions:
            state.trainingForm.captions = state.trainingForm.captions == .files ? .instancePrompt : .files
        case .insert, .backspace, .delete, .home, .end, .wordLeft, .wordRight, .deleteToLineStart, .deleteToLineEnd, .left, .right:
            return editTrainingField(&state, focus, action)
        default:
            return nil
        }
        return Reaction()
    }

    /// The job's reports, open or not (the progress row shows the job while the panel is closed).
    static func receive(_ state: inout StudioState, _ action: Action) -> Reaction? {
        guard case let .training(report) = action else { return nil }
        return receiveTraining(&state, report)
    }

    func render(_ state: StudioState, _ buffer: inout CellBuffer, _ layout: Layout) { drawTrainingPanel(state, self, &buffer, layout.left) }
}

extension StudioState {
    public var trainingPanel: TrainingPanel? {
        get { self[panel: TrainingPanel.self] }
        set { self[panel: TrainingPanel.self] = newValue }
    }
}

private func movedFocus(_ field: TrainingField, by delta: Int) -> TrainingField {
    let all = TrainingField.allCases
    return all[((field.rawValue + delta) % all.count + all.count) % all.count]
}

private func editTrainingField(_ state: inout StudioState, _ field: TrainingField, _ action: Action) -> Reaction {
    guard var editor = state.trainingForm.editors[field], editor.apply(action, lineBreak: " ") else { return .none }
    state.trainingForm.editors[field] = editor
    return Reaction()
}

/// Enter: the fields read into a request and the job started, or the first problem in the status line.
func startTraining(_ state: inout StudioState) -> Reaction {
    if let training = state.training, training.isActive {
        state.status = Status(text: "Training \(training.request.name) is running: one job at a time (Esc stops it, keeping a checkpoint)", isError: true)
        return Reaction()
    }
    if state.isRunning {
        state.status = Status(text: "A generation is running: training waits until it ends (Esc cancels it)", isError: true)
        return Reaction()
    }
    guard let model = state.model else {
        state.status = Status(text: "No model to train: restart with `sd3 studio --model DIR` or pick one with F8", isError: true)
        return Reaction()
    }
    do throws(FieldError) {
        let request = try readTrainingRequest(state, model: model)
        var run = TrainingRun(request: request)
        run.phase = .preparing("loading \(state.localModelName)")
        state.training = run
        state.status = Status(text: "Training \(request.name) → \(request.output): loading the model…", isError: false)
        return Reaction(effects: [.startTraining(request)])
    } catch {
        state.status = Status(text: error.description, isError: true)
        return Reaction()
    }
}

/// The fields as a request; the first one that is empty or not a valid number is the error.
func readTrainingRequest(_ state: StudioState, model: String) throws(FieldError) -> TrainingRequest {
    let form = state.trainingForm
    func text(_ field: TrainingField) -> String { form.text(field).trimmingCharacters(in: .whitespaces) }
    func integer(_ field: TrainingField, _ range: ClosedRange<Int>) throws(FieldError) -> Int {
        guard let value = Int(text(field)), range.contains(value) else {
            throw FieldError(description: "\(field.label): '\(text(field))' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
    let data = text(.data)
    guard !data.isEmpty else { throw FieldError(description: "Data folder: type the folder of images (.png, .jpg) and their .txt captions") }
    let instance = text(.instancePrompt)
    if form.captions == .instancePrompt, instance.isEmpty {
        throw FieldError(description: "Instance: type the prompt every image is trained with (Captions is 'instance prompt')")
    }
    let resolution = try integer(.resolution, 16...4096)
    guard resolution % 16 == 0 else { throw FieldError(description: "Resolution: \(resolution) is not a multiple of 16") }
    let rank = try integer(.rank, 1...4096), steps = try integer(.steps, 1...1_000_000), every = try integer(.every, 1...1_000_000)
    guard let lr = Double(text(.learningRate)), lr.isFinite, lr > 0, lr < 1 else {
        throw FieldError(description: "Learn rate: '\(text(.learningRate))' must be a positive number below 1 (e.g. 1e-4)")
    }
    let output = try trainingOutput(text(.output), data: data, folder: state.loraFolder)
    let validation = text(.validationPrompt)
    let seed = UInt64(state.text(.seed).trimmingCharacters(in: .whitespaces)) ?? 0
    return TrainingRequest(model: model, data: data, captionFiles: form.captions == .files, instancePrompt: instance.isEmpty ? nil : instance,
                           resolution: resolution, rank: rank, steps: steps, learningRate: lr, every: every,
                           validationPrompt: validation.isEmpty ? nil : validation, output: output, seed: seed, t5: state.t5, precision: state.precision)
}

/// The LoRA file: a path as typed, or a bare name (empty: the data folder's name) in the first LoRA folder;
/// `.safetensors` added when missing.
func trainingOutput(_ typed: String, data: String, folder: String) throws(FieldError) -> String {
    let dataName = data.split(separator: "/").last.map(String.init) ?? ""
    var name = typed.isEmpty ? dataName : typed
    if name.hasSuffix(".safetensors") { name = String(name.dropLast(".safetensors".count)) }
    let last = name.split(separator: "/").last.map(String.init) ?? ""
    guard !last.isEmpty, last != ".", last != "..", !name.hasSuffix("/") else {
        throw FieldError(description: "Output: '\(typed)' is not a file name (type NAME, or a path ending in NAME.safetensors)")
    }
    if name.contains("/") { return name + ".safetensors" }
    guard !folder.isEmpty else { throw FieldError(description: "Output: no LoRA folder is known; type a path ending in NAME.safetensors") }
    return folder + "/" + name + ".safetensors"
}

/// Esc while a job runs (in the panel, or with nothing else to cancel): it stops after its step with a checkpoint.
func stopTraining(_ state: inout StudioState) -> Reaction? {
    guard let training = state.training, training.isActive else { return nil }
    guard training.phase != .stopping else { return Reaction.none }
    state.training?.phase = .stopping
    state.status = Status(text: "Stopping \(training.request.name) after this step (a checkpoint is written)…", isError: false)
    return Reaction(effects: [.stopTraining])
}

private func receiveTraining(_ state: inout StudioState, _ report: TrainingReport) -> Reaction {
    guard var run = state.training else { return .none }
    let name = run.request.name
    var effects: [Effect] = []
    switch report {
    case let .preparing(what):
        if run.phase != .stopping { run.phase = .preparing(what) }
        state.status = Status(text: "Training \(name): \(what)…", isError: false)
    case let .note(line):
        state.status = Status(text: "Training \(name): \(line)", isError: false)
    case let .started(step, steps, images):
        if run.phase != .stopping { run.phase = .training }
        (run.firstStep, run.step, run.steps, run.losses) = (step, step, steps, [])
        let from = step > 0 ? " from step \(step) (resumed)" : ""
        state.status = Status(text: "Training \(name) on \(images) images\(from): \(steps) steps", isError: false)
    case let .step(step, steps, loss, secondsPerStep):
        (run.step, run.steps, run.secondsPerStep) = (step, steps, secondsPerStep)
        run.losses.append(loss)
    case let .checkpoint(path, step):
        (run.checkpointPath, run.checkpointStep) = (path, step)
    case let .validation(step, image, path):
        run.validation = .init(step: step, image: image, path: path)
    case let .finished(output, steps, seconds, lora, problem):
        (run.phase, run.step) = (.finished, steps)
        let time = String(format: "%.0f s", seconds)
        if let lora {
            addLora(&state, lora)
            state.status = Status(text: "Trained \(name) (\(steps) steps, \(time)): on in the LoRA list (F9) from the next image · \(output)", isError: false)
            if state.loraPanel != nil { effects.append(.scanLoras) }
        } else {
            state.status = Status(text: "Trained \(output) (\(steps) steps, \(time)), but the LoRA list could not read it: \(problem ?? "unknown")", isError: true)
        }
    case let .stopped(step, steps, checkpoint):
        (run.phase, run.step) = (.stopped, step)
        if let checkpoint {
            state.status = Status(text: "Stopped \(name) at step \(step) of \(steps): Enter with the same settings resumes · checkpoint \(checkpoint)", isError: false)
        } else {
            state.status = Status(text: "Stopped \(name) before its first step: nothing to keep", isError: false)
        }
    case let .failed(message):
        run.phase = .failed(message)
        state.status = Status(text: "Training \(name): \(message)", isError: true)
    }
    state.training = run
    return Reaction(effects: effects)
}

private extension Action {
    var isNext: Bool {
        if case .nextField = self { return true }
        return false
    }
}
