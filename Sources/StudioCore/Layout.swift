/// A rectangle of cells.
public struct Rect: Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { (self.x, self.y, self.width, self.height) = (x, y, width, height) }
    public var inner: Rect { Rect(x: x + 1, y: y + 1, width: max(0, width - 2), height: max(0, height - 2)) }
}

/// Where everything goes for a terminal size. Shared by `render` and the reducer (which needs the editors'
/// widths to move the cursor up and down wrapped rows).
///
///     header                                   (1 row)
///     ┌ Prompt ──────────┐┌ Preview ─────────┐
///     │                  ││                  │
///     ┌ Negative prompt ─┐│                  │
///     ┌ Settings ────────┐│                  │  (8 rows of two fields)
///     progress line                            (1 row)
///     status line                              (1 row)
public struct Layout: Sendable, Equatable {
    public static let minimumColumns = 80
    public static let minimumRows = 24
    static let settingsRows = 8

    public let columns: Int
    public let rows: Int
    public let header: Rect
    public let prompt: Rect
    public let negativePrompt: Rect
    public let settings: Rect
    public let preview: Rect
    public let progressRow: Int
    public let statusRow: Int

    public init(columns: Int, rows: Int) {
        self.columns = columns
        self.rows = rows
        let previewWidth = columns >= 120 ? columns / 2 : 36
        let leftWidth = columns - previewWidth
        let body = rows - 3
        let settingsHeight = Self.settingsRows + 2
        let editors = max(6, body - settingsHeight)
        let promptHeight = (editors * 3 + 2) / 5
        header = Rect(x: 0, y: 0, width: columns, height: 1)
        prompt = Rect(x: 0, y: 1, width: leftWidth, height: promptHeight)
        negativePrompt = Rect(x: 0, y: 1 + promptHeight, width: leftWidth, height: editors - promptHeight)
        settings = Rect(x: 0, y: 1 + editors, width: leftWidth, height: settingsHeight)
        preview = Rect(x: leftWidth, y: 1, width: previewWidth, height: body)
        progressRow = rows - 2
        statusRow = rows - 1
    }

    public var fits: Bool { columns >= Self.minimumColumns && rows >= Self.minimumRows }

    /// The column of the fields (prompt, negative prompt, settings), which the LoRA panel takes over.
    public var left: Rect { Rect(x: 0, y: 1, width: prompt.width, height: preview.height) }

    /// The text width of a multi-line editor (inside its frame).
    public var editorWidth: Int { prompt.width - 2 }

    public func editor(_ field: FieldID) -> Rect { field == .prompt ? prompt : negativePrompt }

    /// The image area inside the preview frame (its last inner row holds the caption).
    public var image: Rect {
        let inner = preview.inner
        return Rect(x: inner.x, y: inner.y, width: inner.width, height: max(0, inner.height - 1))
    }

    /// The settings fields in reading order, two to a row.
    public static let settingsFields: [FieldID] = [.steps, .guidance, .seed, .seedMode, .width, .height,
                                                   .sizePreset, .shift, .t5, .precision, .initImage, .strength,
                                                   .variationSeed, .variationStrength, .recipe, .scheduler]

    public func settingsCell(_ field: FieldID) -> Rect? {
        guard let i = Self.settingsFields.firstIndex(of: field) else { return nil }
        let inner = settings.inner
        let half = inner.width / 2
        return Rect(x: inner.x + (i % 2) * half, y: inner.y + i / 2, width: i % 2 == 0 ? half : inner.width - half, height: 1)
    }
}
