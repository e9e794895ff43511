import Foundation
import ImageIO

/// The favorites (F3) or history (F4) browser: the records the store gave, the search typed so far, the
/// selection, and what is being asked (a delete to confirm, a note being edited). Thumbnails arrive from the
/// session as they are read; `requested` keeps the reducer from asking twice.
public struct Browser: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case favorites, history
        public var title: String { self == .favorites ? "Favorites" : "History" }
    }

    public enum Mode: Sendable, Equatable {
        case browsing
        /// Asked: delete this entry, and its file or only the entry (OutputFolder.deletion).
        case confirmDelete(OutputFolder.Deletion)
        case editingNote(TextEditor)
    }

    public var kind: Kind
    /// Newest first; nil until the store has answered.
    public var records: [HistoryRecord]?
    public var query = ""
    /// An index into `shown`.
    public var selected = 0
    public var mode = Mode.browsing
    public var thumbnails: [Int: RGBImage] = [:]
    public var requested: Set<Int> = []
    /// Thumbnails that could not be read (the PNG was moved or deleted outside the studio).
    public var missing: Set<Int> = []

    public init(kind: Kind) { self.kind = kind }

    /// The records whose prompt, negative prompt or note contain every word of the search (any case).
    public var shown: [HistoryRecord] {
        let words = query.lowercased().split(separator: " ")
        guard let records, !words.isEmpty else { return records ?? [] }
        return records.filter { r in
            let text = (r.metadata.prompt + "\n" + r.metadata.negativePrompt + "\n" + r.note).lowercased()
            return words.allSatisfy { text.contains($0) }
        }
    }

    public var current: HistoryRecord? {
        let shown = self.shown
        return shown.indices.contains(selected) ? shown[selected] : nil
    }

    mutating func update(_ id: Int, _ change: (inout HistoryRecord) -> Void) {
        guard let i = records?.firstIndex(where: { $0.id == id }) else { return }
        change(&records![i])
    }
}

/// Where the browser's parts go: the list (three rows per image: thumbnail, prompt, details), the selected
/// image's preview and details on the right, and the hint line. Shared by `render` and the pixel-image driver.
public struct BrowserLayout: Sendable, Equatable {
    public static let entryHeight = 3
    public static let thumbnailWidth = 6
    public let list: Rect
    public let preview: Rect
    public let image: Rect
    public let hintRow: Int

    public init(columns: Int, rows: Int) {
        let previewWidth = columns >= 120 ? columns * 2 / 5 : 30
        list = Rect(x: 0, y: 1, width: columns - previewWidth, height: rows - 4)
        preview = Rect(x: columns - previewWidth, y: 1, width: previewWidth, height: rows - 4)
        let inner = preview.inner
        image = Rect(x: inner.x, y: inner.y, width: inner.width, height: max(0, min(inner.height - 7, inner.width / 2)))
        hintRow = rows - 3
    }

    /// How many entries fit in the list.
    public var visibleCount: Int { max(1, list.inner.height / Self.entryHeight) }

    /// The first entry shown, keeping the selection in view.
    public func top(selected: Int) -> Int { max(0, selected - visibleCount + 1) }
}
