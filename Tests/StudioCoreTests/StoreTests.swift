import Foundation
import ImageIO
@testable import StudioCore
import Testing

@Suite struct StoreTests {
    @Test func historyAppendsAndFoldsStars() throws {
        let store = HistoryStore(path: Support.temporaryFolder() + "/deep/history.jsonl")
        #expect(try store.records().isEmpty)
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        try store.append(HistoryRecord(id: 1, file: "/o/1.png", date: date, metadata: Support.metadata(seed: 1)))
        try store.append(HistoryRecord(id: 2, file: "/o/2.png", date: date, metadata: Support.metadata(seed: 2)))
        try store.setFavorite(id: 2, true)
        try store.setFavorite(id: 1, true)
        try store.setFavorite(id: 1, false)
        // A torn last line (a crash mid-write) is skipped.
        let handle = FileHandle(forWritingAtPath: store.path)!
        handle.seekToEndOfFile()
        handle.write(Data("{\"event\":\"gener".utf8))
        try handle.close()
        let records = try store.records()
        #expect(records.map(\.id) == [1, 2] && records.map(\.favorite) == [false, true])
        #expect(try store.favorites().map(\.metadata.seed) == [2])
        #expect(records[0].date == date)
    }

    @Test func unwritableHistoryIsAClearError() {
        let store = HistoryStore(path: "/proc/no-such/history.jsonl")
        #expect(throws: HistoryError.self) { try store.setFavorite(id: 1, true) }
    }

    @Test func dataFolderFollowsXDG() {
        #expect(HistoryStore.dataFolder(environment: ["XDG_DATA_HOME": "/x", "HOME": "/h"]) == "/x/sd3-studio")
        #expect(HistoryStore.dataFolder(environment: ["HOME": "/h"]) == "/h/.local/share/sd3-studio")
        #expect(OutputFolder.defaultPath(environment: ["HOME": "/h"]) == "/h/.local/share/sd3-studio/outputs")
    }

    @Test func outputNamesNumberAndSlug() throws {
        #expect(OutputFolder.slug("A red circle, on a blue background!") == "a-red-circle-on-a")
        #expect(OutputFolder.slug("!!!") == "untitled")
        #expect(OutputFolder.fileName(number: 7, seed: 42, prompt: "Hello world") == "00007-42-hello-world.png")
        let folder = OutputFolder(path: Support.temporaryFolder() + "/outputs")
        let first = try folder.save(Support.image, metadata: Support.metadata(seed: 5))
        #expect(first.number == 1 && first.path.hasSuffix("/00001-5-a-red-circle.png"))
        FileManager.default.createFile(atPath: folder.path + "/00041-1-other.png", contents: Data())
        let second = try folder.save(Support.image, metadata: Support.metadata(seed: 6))
        #expect(second.number == 42)
        let png = try PNGFile.read(second.path)
        #expect(png.image == Support.image)
        #expect(png.text.first { $0.key == "parameters" }?.value == Support.metadata(seed: 6).a1111Parameters)
        #expect(png.text.contains { $0.key == "sd3-studio" })
    }
}
