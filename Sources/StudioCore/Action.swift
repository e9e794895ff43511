import ComfyUI
import ImageIO
import ImageMetadata
import SD3

/// A key as the terminal driver decodes it; bindings map keys to actions.
public enum Key: Sendable, Hashable {
    case character(Character)
    case paste(String)
    case enter, tab, backTab, backspace, delete, escape
    case left, right, up, down, home, end, ctrlLeft, ctrlRight
    case function(Int)
    case ctrl(Character)
    case alt(Character)

    public var name: String {
        switch self {
        case let .character(c): return c == " " ? "Space" : String(c)
        case .paste: return "Paste"
        case .enter: return "Enter"
        case .tab: return "Tab"
        case .backTab: return "Shift-Tab"
        case .backspace: return "Backspace"
        case .delete: return "Delete"
        case .escape: return "Esc"
        case .left: return "Left"
        case .right: return "Right"
        case .up: return "Up"
        case .down: return "Down"
        case .home: return "Home"
        case .end: return "End"
        case .ctrlLeft: return "Ctrl-Left"
        case .ctrlRight: return "Ctrl-Right"
        case let .function(n): return "F\(n)"
        case let .ctrl(c): return "Ctrl-\(c.uppercased())"
        case let .alt(c): return "Alt-\(c)"
        }
    }
}

/// Everything that can change the state: keys (through the binding table), engine events and the results of
/// effects the session ran.
public enum Action: Sendable {
    // Editing the focused field.
    case insert(String)
    case newline
    case backspace, delete, left, right, up, down, home, end, wordLeft, wordRight
    case deleteToLineStart, deleteToLineEnd
    // Moving between fields and panels.
    case nextField, previousField
    case toggleHelp
    /// A key that opens a panel (`Binding(opens:)` in `Bindings.table`), with the panel as it opens: every panel is
    /// opened by this one case, so a new panel needs no action of its own.
    case open(PanelOpening)
    // Generation.
    case generate, cancel, toggleFavorite, quit
    /// Ctrl-C: stops what runs (a generation, a training job, a pull); with nothing running it says how to quit, and
    /// a second one quits.
    case interrupt
    /// Seed exploration: a grid of draft renders, one seed each.
    case explore
    case cycleTheme
    /// Ctrl-N in the favorites browser.
    case editNote
    /// The models the session found for the model picker (F8).
    case modelsFound([ModelPicker.Item])
    /// For the LoRA list (F9): the LoRA files the session found, one it read, and those of a recalled image it looked for.
    case lorasFound([LoraCatalog.Candidate], folder: String)
    case loraRead(LoraEntry)
    case lorasLocated([LoraCatalog.Location], folder: String, from: String)
    /// A pull's progress line, its snapshot folder when done, or why it stopped (nil: cancelled).
    case pullProgress(repo: String, progress: String)
    case pullFinished(repo: String, snapshot: String)
    case pullStopped(repo: String, error: String?)
    /// What the session's training job reports (the training panel, F12).
    case training(TrainingReport)
    /// What the session learnt of server `index` (`StudioState.backends`, the backend picker F11).
    case backendProbed(index: Int, BackendStatus)
    case resize(columns: Int, rows: Int)
    case engine(GenerationEvent)
    /// An event of the draft of grid cell `cell`, when the grid's drafts are spread over servers (they run at once).
    case gridEvent(cell: Int, GenerationEvent)
    /// The stream ended without `finished`: an error message, or nil when it was cancelled.
    case generationStopped(error: String?)
    case saved(HistoryRecord)
    case failed(String)
    case favoriteSaved(id: Int, favorite: Bool)
    case browserLoaded([HistoryRecord])
    case thumbnailLoaded(id: Int, image: RGBImage?)
    /// What deleting this entry would do to its file (the session looked), to be confirmed.
    case deletePlanned(id: Int, deletion: OutputFolder.Deletion)
    case deleted(id: Int, message: String)
    case noteSaved(id: Int, note: String)
    case recalled(RecalledParameters, from: String)
    /// The recalled PNG's pixels, for the preview pane (sent after `recalled` when the file is an image we can read).
    case recalledImage(RGBImage)
}

/// What a generation needs beyond the state: read from the fields by the reducer, run by the session.
public struct GenerationRequest: Sendable, Equatable {
    public var parameters: GenerationParameters
    public var model: String
    public var t5: T5Mode
    public var precision: PrecisionChoice
    /// img2img: the PNG to start from, read by the session (the reducer does no I/O).
    public var initImagePath: String?
    /// The LoRAs turned on, in list order, applied at run time (no reload).
    public var loras: [LoraChoice] = []
}

/// Work the reducer asks for; the session performs it and reports back with actions.
public enum Effect: Sendable, Equatable {
    case start(GenerationRequest)
    case cancel
    case save(image: RGBImage, metadata: ImageMetadata)
    case setFavorite(id: Int, favorite: Bool)
    case loadBrowser(favoritesOnly: Bool)
    /// Small copies of these PNGs for the browser, each reported by `thumbnailLoaded`.
    case loadThumbnails([Thumbnail])
    /// Looks at what deleting this entry would do to its file (`deletePlanned`).
    case planDelete(id: Int, file: String)
    /// Deletes the history row and then its PNG, if the studio wrote it into its outputs folder (OutputFolder.deletion).
    case delete(id: Int, file: String)
    case setNote(id: Int, note: String)
    /// Reads a PNG's parameters off the main actor (`recalled`, or `failed`); `cancelRecall` drops the answer.
    case recall(path: String)
    case cancelRecall
    /// Looks for models (ModelCatalog) and reports them with `modelsFound`.
    case scanModels
    /// Lists the LoRA files in the LoRA folders (`lorasFound`).
    case scanLoras
    /// Reads a LoRA typed as a path or a name in the LoRA folders (`loraRead`, or `failed` with the reason).
    case readLora(String)
    /// Looks for a recalled image's LoRAs (`lorasLocated`).
    case locateLoras([ImageMetadata.LoraRecord], from: String)
    /// Pulls a repo into the Hugging Face cache in the background (`pullProgress`, then `pullFinished` or `pullStopped`).
    /// `skipT5`: without text_encoder_3/ and tokenizer_3/ (`--no-t5`), when the T5 field is off.
    case pull(repo: String, skipT5: Bool)
    case cancelPull
    /// Trains a LoRA in the background (`training` reports), resuming from the output's checkpoint when there is one.
    case startTraining(TrainingRequest)
    /// Asks the training job to stop after its step, writing a checkpoint.
    case stopTraining
    /// Asks each server in `StudioState.backends` for its state (`backendProbed`).
    case probeBackends
    /// Renders on ComfyUI servers instead of the local engine (`RemoteRun`).
    case startRemote(RemoteRun)
    case quit
}

/// Images to make on ComfyUI servers: one (its events come back as `engine`) or a grid's drafts, spread over the
/// servers with `JobQueue` (events come back as `gridEvent`). Each server puts in its own file names (`StudioBackend.job`).
public struct RemoteRun: Sendable, Equatable {
    /// One per image, in grid order; the model and encoder names are the servers'.
    public var jobs: [ComfyUIJob]
    public var servers: [StudioBackend]
    /// img2img: the PNG to start from, read by the session.
    public var initImagePath: String?
    /// False when the T5 field is off: the servers' T5 is left out.
    public var useT5: Bool
    public var grid: Bool
    /// A grid's drafts the local engine takes a share of (F11's Space on the local engine), with the studio's model.
    public var local: LocalDrafts?

    public init(jobs: [ComfyUIJob], servers: [StudioBackend], initImagePath: String?, useT5: Bool, grid: Bool, local: LocalDrafts? = nil) {
        (self.jobs, self.servers, self.initImagePath, self.useT5, self.grid, self.local) = (jobs, servers, initImagePath, useT5, grid, local)
    }
}

/// The local engine as one more worker of a grid spread over servers: the studio's model, its LoRA files, T5 and
/// precision choices.
public struct LocalDrafts: Sendable, Equatable {
    public var model: String
    public var loras: [LoraChoice]
    public var t5: T5Mode
    public var precision: PrecisionChoice
    public init(model: String, loras: [LoraChoice], t5: T5Mode, precision: PrecisionChoice) {
        (self.model, self.loras, self.t5, self.precision) = (model, loras, t5, precision)
    }
}

public struct Thumbnail: Sendable, Equatable {
    public var id: Int
    public var file: String
}

public struct Reaction: Sendable, Equatable {
    public var redraw: Bool
    public var effects: [Effect]

    public init(redraw: Bool = true, effects: [Effect] = []) { (self.redraw, self.effects) = (redraw, effects) }
    public static let none = Reaction(redraw: false)
}
