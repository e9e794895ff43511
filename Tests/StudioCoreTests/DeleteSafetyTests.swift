import Foundation
import ImageIO
import SD3
@testable import StudioCore
@testable import StudioRuntime
import Testing

/// Deleting an entry (F3/F4 → Delete → y) removes a file only when the studio wrote it: a regular file named
/// like its outputs, directly in its outputs folder, links and `..` resolved. Folders, files elsewhere and links
/// pointing out are kept, and only the entry goes.
@Suite struct DeleteSafetyTests {
    /// An outputs folder with one saved image, and a folder beside it for things the studio did not write.
    static func folders() throws -> (outputs: OutputFolder, saved: String, elsewhere: String) {
        let root = Support.temporaryFolder()
        let outputs = OutputFolder(path: root + "/outputs")
        let (_, saved) = try outputs.save(Support.image, metadata: Support.metadata())
        try FileManager.default.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
        return (outputs, saved, root + "/elsewhere")
    }

    @Test func onlyTheStudiosOwnFilesMayBeDeleted() throws {
        let (outputs, saved, elsewhere) = try Self.folders()
        let resolvedSaved = try #require(OutputFolder.resolve(saved))
        #expect(outputs.deletion(of: saved) == .file(resolvedSaved))
        // `..` that comes back inside, and the folder reached through a link: still the studio's file.
        let name = (saved as NSString).lastPathComponent
        #expect(outputs.deletion(of: outputs.path + "/../outputs/" + name) == .file(resolvedSaved))
        let linkedFolder = elsewhere + "/link-to-outputs"
        try FileManager.default.createSymbolicLink(atPath: linkedFolder, withDestinationPath: outputs.path)
        #expect(outputs.deletion(of: linkedFolder + "/" + name) == .file(resolvedSaved))

        // A folder recorded as an entry's PNG (a favorites import can do that), inside the outputs folder.
        let folderEntry = outputs.path + "/00009-1-a-folder.png"
        try FileManager.default.createDirectory(atPath: folderEntry + "/inner", withIntermediateDirectories: true)
        // A file elsewhere named like an output, a link in the outputs folder to it, `..` leading out.
        let outside = elsewhere + "/00001-7-a-red-circle.png"
        try Data("not yours".utf8).write(to: URL(fileURLWithPath: outside))
        let link = outputs.path + "/00010-1-link.png"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        let fifo = outputs.path + "/00011-1-fifo.png"
        #expect(mkfifo(fifo, 0o600) == 0)
        let oddName = outputs.path + "/holiday.png"
        try Data("mine".utf8).write(to: URL(fileURLWithPath: oddName))
        let kept = [folderEntry, outside, link, outputs.path + "/../elsewhere/00001-7-a-red-circle.png", fifo, oddName,
                    outputs.path + "/00012-1-gone.png", outputs.path, "/"]
        for path in kept {
            guard case .entryOnly = outputs.deletion(of: path) else {
                Issue.record("\(path) would be deleted")
                continue
            }
            #expect(outputs.delete(path).hasPrefix("from the list only ("))
        }
        #expect(FileManager.default.fileExists(atPath: folderEntry + "/inner"))
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "not yours")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == outside)
        #expect(FileManager.default.fileExists(atPath: fifo) && FileManager.default.fileExists(atPath: oddName))
        #expect(outputs.delete(saved) == "and its file \(name)" && !FileManager.default.fileExists(atPath: saved))
    }

    /// The session end to end: the history browser's Delete on three entries (the studio's PNG, a folder, a file
    /// elsewhere) asks with the full path or says only the entry goes, and the disk keeps what was not the studio's.
    @MainActor
    @Test func sessionDeletesOnlyWhatTheStudioWrote() throws {
        let (outputs, saved, elsewhere) = try Self.folders()
        let root = (outputs.path as NSString).deletingLastPathComponent
        let store = try StudioStore(path: root + "/studio.sqlite")
        let outside = elsewhere + "/00001-7-a-red-circle.png"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: outside))
        let folderEntry = root + "/a-folder"
        try FileManager.default.createDirectory(atPath: folderEntry + "/inner", withIntermediateDirectories: true)
        try store.add(file: saved, date: Date(), metadata: Support.metadata())
        try store.add(file: folderEntry, date: Date(), metadata: Support.metadata())
        try store.add(file: outside, date: Date(), metadata: Support.metadata())
        let session = StudioSession(state: Support.state(), config: StudioConfig(model: nil, outputFolder: outputs, store: .success(store), threads: 1))
        session.send(.showHistory)
        #expect(session.state.browser?.records?.map(\.id) == [3, 2, 1])

        session.send(.delete)
        #expect(session.state.status.text.hasPrefix("Remove #3 from the list only? y/n: \(outside) is not in the outputs folder"), "\(session.state.status.text)")
        session.send(.insert("y"))
        #expect(session.state.status.text.hasPrefix("Deleted #3 from the list only (\(outside) is not in the outputs folder"), "\(session.state.status.text)")

        session.send(.delete)
        #expect(session.state.status.text == "Remove #2 from the list only? y/n: \(folderEntry) is a folder, kept")
        session.send(.insert("y"))

        session.send(.delete)
        let resolved = try #require(OutputFolder.resolve(saved))
        #expect(session.state.status.text == "Delete #1 and its file? y/n: \(resolved)")
        session.send(.insert("y"))
        #expect(session.state.status.text == "Deleted #1 and its file \((saved as NSString).lastPathComponent)")

        #expect(try store.records().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: saved))
        #expect(FileManager.default.fileExists(atPath: folderEntry + "/inner"))
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "keep")
    }

    /// 16 threads saving into one folder at once: 16 numbers, 16 files, each a whole image.
    @Test func concurrentSavesTakeDistinctNames() throws {
        let outputs = OutputFolder(path: Support.temporaryFolder() + "/outputs")
        final class Saved: @unchecked Sendable {
            let lock = NSLock()
            var results: [(number: Int, path: String)] = []
            var errors: [String] = []
        }
        let saved = Saved()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let result = Result { () throws(StoreError) in try outputs.save(Support.image, metadata: Support.metadata(seed: UInt64(i))) }
            saved.lock.withLock {
                switch result {
                case let .success(value): saved.results.append(value)
                case let .failure(error): saved.errors.append(error.description)
                }
            }
        }
        #expect(saved.errors.isEmpty, "\(saved.errors)")
        #expect(saved.results.count == 16 && Set(saved.results.map(\.number)).count == 16 && Set(saved.results.map(\.path)).count == 16)
        for result in saved.results { #expect(try PNGFile.read(result.path).image == Support.image) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs.path).count == 16)
    }
}
