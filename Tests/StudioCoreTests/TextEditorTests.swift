@testable import StudioCore
import Testing

@Suite struct TextEditorTests {
    @Test func widthsOfCJKEmojiAndCombiningMarks() {
        #expect(CellWidth.of("a") == 1)
        #expect(CellWidth.of("中") == 2)
        #expect(CellWidth.of("한") == 2)
        #expect(CellWidth.of("🎨") == 2)
        #expect(CellWidth.of("👩‍💻") == 2)
        #expect(CellWidth.of("é") == 1)  // e + U+0301 is one grapheme
        #expect(CellWidth.of("ｶ") == 1)  // halfwidth katakana
        #expect(CellWidth.of("中文 ok") == 7)
    }

    @Test func wrapsByColumnsNotCharacters() {
        // Width 6 leaves 5 columns for text: two CJK characters (4) fit, a third does not.
        let editor = TextEditor("中文字ab\ncd")
        let rows = editor.rows(width: 6)
        #expect(rows.map(editor.line) == ["中文", "字ab", "cd"])
        #expect(editor.location(width: 6) == (row: 2, column: 2))
    }

    /// Prompts wrap between words: the row breaks after its last space; a space that overflows
    /// ends its row; only a word longer than the row is cut.
    @Test func wrapsBetweenWords() {
        let editor = TextEditor("a red circle at the top left")
        // Width 11 leaves 10 columns: "a red " (6) + "circle" (6) does not fit.
        #expect(editor.rows(width: 11).map(editor.line) == ["a red ", "circle at ", "the top ", "left"])
        #expect(editor.location(width: 11) == (row: 3, column: 4))
        let long = TextEditor("an extraordinarily long")
        #expect(long.rows(width: 8).map(long.line) == ["an ", "extraor", "dinaril", "y long"])
        // Every character is on exactly one row, in order.
        for text in ["a red circle at the top left", "x  y   z", "   ", "中文 字ab cd", "one\ntwo three"] {
            let e = TextEditor(text)
            for width in 2...14 {
                let rows = e.rows(width: width)
                #expect(rows.first?.start == 0 && rows.last?.end == e.characters.count, "\(text) at \(width)")
                for (a, b) in zip(rows, rows.dropFirst()) { #expect(b.start == a.end || b.start == a.end + 1, "\(text) at \(width)") }
            }
        }
    }

    @Test func verticalMovesKeepTheColumnAcrossWideCharacters() {
        var editor = TextEditor("abcdef\n中文字")
        editor.vertical(-1, width: 20)
        #expect(editor.cursor == 6)  // end of "中文字" is column 6 → column 6 of "abcdef"
        editor.home()
        editor.right()
        editor.right()
        editor.vertical(1, width: 20)
        #expect(editor.cursor == 8)  // column 2 → after "中"
        editor.vertical(1, width: 20)
        #expect(editor.cursor == editor.characters.count)
    }

    @Test func wordJumpsAndKills() {
        var editor = TextEditor("a red  circle")
        editor.wordLeft()
        #expect(editor.cursor == 7)
        editor.wordLeft()
        #expect(editor.cursor == 2)
        editor.wordRight()
        #expect(editor.cursor == 5)
        editor.deleteToLineEnd()
        #expect(editor.text == "a red")
        editor.left()
        editor.deleteToLineStart()
        #expect(editor.text == "d" && editor.cursor == 0)
    }

    /// The keys all text fields share go through `apply`; the others are left to the field (false, text unchanged).
    @Test func applyEditsWithTheSharedKeysOnly() {
        var editor = TextEditor()
        #expect(editor.apply(.insert("a red\ncircle")) && editor.text == "a red circle")
        #expect(editor.apply(.wordLeft) && editor.apply(.backspace) && editor.text == "a redcircle" && editor.cursor == 5)
        #expect(editor.apply(.home) && editor.apply(.delete) && editor.apply(.right) && editor.cursor == 1)
        #expect(editor.apply(.deleteToLineEnd) && editor.text == " " && editor.apply(.end) && editor.cursor == 1)
        for action in [Action.newline, .up, .down, .cancel, .nextField, .generate, .toggleFavorite] {
            #expect(!editor.apply(action) && editor.text == " " && editor.cursor == 1, "\(action)")
        }
        var path = TextEditor(), prompt = TextEditor()
        #expect(path.apply(.insert("/tmp/a.png\n"), lineBreak: "") && path.text == "/tmp/a.png")
        #expect(prompt.apply(.insert("one\ntwo"), lineBreak: "\n") && prompt.text == "one\ntwo")
        #expect(prompt.apply(.wordRight) && prompt.apply(.deleteToLineStart) && prompt.text == "one\n")
    }

    @Test func pasteNormalisesLineEndsAndDropsControls() {
        var editor = TextEditor()
        editor.insert("one\r\ntwo\rthree\u{7}\tfour")
        #expect(editor.text == "one\ntwo\nthree four")
    }
}
