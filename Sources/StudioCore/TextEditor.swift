/// A multi-line text field: the text as characters (grapheme clusters, so an emoji or a CJK character is one
/// step for the cursor) and an insertion point. Rows wrap at a width in columns; vertical moves follow the
/// wrapped rows, keeping the column, as in most editors.
public struct TextEditor: Sendable, Equatable {
    public private(set) var characters: [Character]
    /// 0…characters.count: the cursor sits before `characters[cursor]`.
    public private(set) var cursor: Int

    public init(_ text: String = "") {
        characters = Array(text)
        cursor = characters.count
    }

    public var text: String { String(characters) }

    /// One wrapped row: characters[start..<end], without its newline.
    public struct Row: Equatable, Sendable {
        public var start: Int
        public var end: Int
    }

    // MARK: Editing

    public mutating func insert(_ text: String) {
        let new = Array(text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n"))
            .filter { $0 == "\n" || $0 == "\t" || CellWidth.of($0) > 0 }
            .map { $0 == "\t" ? " " : $0 }
        characters.insert(contentsOf: new, at: cursor)
        cursor += new.count
    }

    public mutating func backspace() {
        guard cursor > 0 else { return }
        characters.remove(at: cursor - 1)
        cursor -= 1
    }

    public mutating func delete() {
        guard cursor < characters.count else { return }
        characters.remove(at: cursor)
    }

    /// Ctrl-U: delete from the start of the line to the cursor.
    public mutating func deleteToLineStart() {
        let start = lineStart(cursor)
        characters.removeSubrange(start..<cursor)
        cursor = start
    }

    /// Ctrl-K: delete from the cursor to the end of the line (or the newline itself at the end of a line).
    public mutating func deleteToLineEnd() {
        let end = lineEnd(cursor)
        if end == cursor, cursor < characters.count { characters.remove(at: cursor) } else { characters.removeSubrange(cursor..<end) }
    }

    public mutating func clear() {
        characters = []
        cursor = 0
    }

    /// The editing keys every text field shares: typing (a line break typed or pasted becomes `lineBreak`),
    /// Backspace, Delete, Left/Right, Home/End, word moves, Ctrl-U and Ctrl-K. False for any other action: Enter,
    /// Up/Down and Esc mean something different in each field, so its caller decides.
    public mutating func apply(_ action: Action, lineBreak: String = " ") -> Bool {
        switch action {
        case let .insert(text): insert(lineBreak == "\n" ? text : text.replacingOccurrences(of: "\n", with: lineBreak))
        case .backspace: backspace()
        case .delete: delete()
        case .left: left()
        case .right: right()
        case .home: home()
        case .end: end()
        case .wordLeft: wordLeft()
        case .wordRight: wordRight()
        case .deleteToLineStart: deleteToLineStart()
        case .deleteToLineEnd: deleteToLineEnd()
        default: return false
        }
        return true
    }

    // MARK: Moving

    public mutating func left() { cursor = max(0, cursor - 1) }
    public mutating func right() { cursor = min(characters.count, cursor + 1) }
    public mutating func home() { cursor = lineStart(cursor) }
    public mutating func end() { cursor = lineEnd(cursor) }

    /// Alt-B / Ctrl-Left: to the start of this word, or of the previous one.
    public mutating func wordLeft() {
        while cursor > 0, !isWord(characters[cursor - 1]) { cursor -= 1 }
        while cursor > 0, isWord(characters[cursor - 1]) { cursor -= 1 }
    }

    /// Alt-F / Ctrl-Right: past the end of this word, or of the next one.
    public mutating func wordRight() {
        while cursor < characters.count, !isWord(characters[cursor]) { cursor += 1 }
        while cursor < characters.count, isWord(characters[cursor]) { cursor += 1 }
    }

    /// Up (-1) or down (+1) one wrapped row at the same column; past the first or last row, to the start or end.
    public mutating func vertical(_ delta: Int, width: Int) {
        let rows = rows(width: width)
        let (row, column) = location(width: width, rows: rows)
        let target = row + delta
        guard target >= 0 else { cursor = 0; return }
        guard target < rows.count else { cursor = characters.count; return }
        var index = rows[target].start, used = 0
        while index < rows[target].end {
            let w = CellWidth.of(characters[index])
            if used + w > column { break }
            used += w
            index += 1
        }
        cursor = index
    }

    // MARK: Layout

    public func rows(width: Int) -> [Row] {
        let width = max(2, width)
        var rows: [Row] = []
        var start = 0, used = 0, index = 0
        while index < characters.count {
            let c = characters[index]
            if c == "\n" {
                rows.append(Row(start: start, end: index))
                index += 1
                (start, used) = (index, 0)
                continue
            }
            let w = CellWidth.of(c)
            if used + w > width - 1 {  // keep the last column free for the cursor
                // Words stay whole: a space that overflows ends the row (it may take the cursor's column), else the
                // row breaks after its last space; a word longer than the row breaks where it must.
                if c == " " {
                    rows.append(Row(start: start, end: index + 1))
                    index += 1
                    (start, used) = (index, 0)
                    continue
                }
                let end = (start..<index).last { characters[$0] == " " }.map { $0 + 1 } ?? index
                rows.append(Row(start: start, end: end))
                (start, used) = (end, CellWidth.of(String(characters[end..<index])))
            }
            used += w
            index += 1
        }
        rows.append(Row(start: start, end: characters.count))
        return rows
    }

    /// The cursor's wrapped row and column.
    public func location(width: Int) -> (row: Int, column: Int) {
        location(width: width, rows: rows(width: width))
    }

    func location(width: Int, rows: [Row]) -> (row: Int, column: Int) {
        // A cursor at a soft break belongs to the next row; at a newline, to the row it ends.
        let row = rows.indices.last(where: { rows[$0].start <= cursor && (cursor <= rows[$0].end) }) ?? 0
        let column = CellWidth.of(String(characters[rows[row].start..<cursor]))
        return (row, column)
    }

    public func line(_ row: Row) -> String { String(characters[row.start..<row.end]) }

    private func lineStart(_ i: Int) -> Int {
        var i = i
        while i > 0, characters[i - 1] != "\n" { i -= 1 }
        return i
    }

    private func lineEnd(_ i: Int) -> Int {
        var i = i
        while i < characters.count, characters[i] != "\n" { i += 1 }
        return i
    }

    private func isWord(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }
}
