import CNcurses
import CPNG
import Testing

/// The two C libraries no engine target uses yet still have to resolve, link and answer.
@Suite struct SystemLibrariesTests {
    @Test func libpngIsVersion16() {
        let version = png_access_version_number()
        #expect(version >= 10600 && version < 10700, "libpng version \(version)")
    }

    @Test func ncursesIsWideCharacterBuild() {
        let version = String(cString: curses_version())
        #expect(version.hasPrefix("ncurses 6"), "\(version)")
        // wcwidth-aware entry points exist only in the wide build.
        var cell = cchar_t()
        var text: [wchar_t] = [0x4E2D, 0]
        #expect(setcchar(&cell, &text, 0, 0, nil) == OK)
    }
}
