import Testing
@testable import SD3

@Suite struct TextInputsTests {
    @Test func splitsOnNewlineOnly() throws {
        #expect(try TextInputs.lines(of: Array("a\r\nb\n\nc".utf8), name: "f") == ["a\r", "b", "", "c"])
        #expect(try TextInputs.lines(of: Array("one\n".utf8), name: "f") == ["one"])
        #expect(try TextInputs.lines(of: [], name: "f") == [])
        #expect(try TextInputs.lines(of: Array("日本\n".utf8), name: "f") == ["日本"])
    }

    @Test func invalidUTF8NamesTheLine() {
        #expect(throws: TextInputs.Error(description: "prompts.txt:2: not valid UTF-8")) {
            try TextInputs.lines(of: Array("fine\n".utf8) + [0x61, 0xFF, 0x62], name: "prompts.txt")
        }
        #expect(throws: TextInputs.Error(description: "/nonexistent.txt: cannot read the file")) { try TextInputs.lines(of: "/nonexistent.txt") }
    }
}
