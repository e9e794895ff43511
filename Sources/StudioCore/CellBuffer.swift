/// What a cell is for; a theme maps roles to colours and attributes (docs/architecture.md, Studio: roles, not colours).
public enum Role: String, Sendable, CaseIterable {
    case normal, title, fieldLabel, field, focusedField, cursor, border, focusedBorder, hint
    case progressBar, progressText, status, statusError, help, image, favorite, warning
}

public struct RGB: Sendable, Equatable, Hashable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }
}

/// One terminal cell. A wide character fills its cell and marks the next one `continuation`.
/// Image cells (symbol art) carry their own colours, which the terminal uses instead of the role's.
public struct Cell: Sendable, Equatable {
    public var character: Character
    public var role: Role
    public var continuation = false
    public var foreground: RGB?
    public var background: RGB?

    public init(_ character: Character, _ role: Role, foreground: RGB? = nil, background: RGB? = nil) {
        self.character = character
        self.role = role
        self.foreground = foreground
        self.background = background
    }

    public static let blank = Cell(" ", .normal)
}

/// The screen as a pure value: `render(state, size)` fills it, the terminal driver flushes it, tests read its lines.
public struct CellBuffer: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]
    /// Where the terminal cursor should be shown (the focused editor's insertion point), if anywhere.
    public var cursor: (x: Int, y: Int)? {
        get { cursorPosition.map { ($0.x, $0.y) } }
        set { cursorPosition = newValue.map { Position(x: $0.x, y: $0.y) } }
    }
    private var cursorPosition: Position?
    struct Position: Equatable { var x: Int, y: Int }

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: .blank, count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = y * width + x
            // Half of a wide character overwritten (a box drawn over a prompt's emoji): the other half becomes a
            // space, or the line would be a column too wide on the terminal.
            if cells[i].continuation, !newValue.continuation, x > 0 { cells[i - 1] = Cell(" ", cells[i - 1].role) }
            if x + 1 < width, cells[i + 1].continuation { cells[i + 1] = Cell(" ", cells[i + 1].role) }
            cells[i] = newValue
        }
    }

    /// Writes `text` from (x, y), clipped to `limit` columns (default: to the right edge); returns the columns used.
    /// A wide character that would straddle the limit becomes a space.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, role: Role, limit: Int? = nil) -> Int {
        guard y >= 0, y < height else { return 0 }
        let end = min(width, x + (limit ?? width))
        var column = x
        for character in text {
            let w = CellWidth.of(character)
            if w == 0 { continue }
            if column + w > end {
                if column < end { self[column, y] = Cell(" ", role) }
                break
            }
            if column >= 0 {
                self[column, y] = Cell(character, role)
                if w == 2 {
                    var next = Cell(" ", role)
                    next.continuation = true
                    self[column + 1, y] = next
                }
            }
            column += w
        }
        return column - x
    }

    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, with cell: Cell = .blank) {
        for row in max(0, y)..<min(height, y + h) {
            for column in max(0, x)..<min(width, x + w) { self[column, row] = cell }
        }
    }

    public mutating func setRole(_ role: Role, x: Int, y: Int, width w: Int) {
        guard y >= 0, y < height else { return }
        for column in max(0, x)..<min(width, x + w) { cells[y * width + column].role = role }
    }

    /// A frame with an optional title on its top edge.
    public mutating func box(x: Int, y: Int, width w: Int, height h: Int, title: String = "", role: Role = .border) {
        guard w >= 2, h >= 2 else { return }
        for column in x + 1..<x + w - 1 {
            self[column, y] = Cell("─", role)
            self[column, y + h - 1] = Cell("─", role)
        }
        for row in y + 1..<y + h - 1 {
            self[x, row] = Cell("│", role)
            self[x + w - 1, row] = Cell("│", role)
        }
        self[x, y] = Cell("┌", role)
        self[x + w - 1, y] = Cell("┐", role)
        self[x, y + h - 1] = Cell("└", role)
        self[x + w - 1, y + h - 1] = Cell("┘", role)
        if !title.isEmpty { put(" \(title) ", x: x + 2, y: y, role: role, limit: w - 4) }
    }

    /// The text of each row without trailing spaces: the snapshot form used by tests.
    public var lines: [String] {
        (0..<height).map { row in
            var line = ""
            for column in 0..<width where !self[column, row].continuation { line.append(self[column, row].character) }
            while line.last == " " { line.removeLast() }
            return line
        }
    }
}
