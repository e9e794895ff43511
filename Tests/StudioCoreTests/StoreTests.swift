import Foundation
import GRDB
import ImageIO
@testable import StudioCore
import Testing

@Suite struct StoreTests {
    static let date = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func newDatabaseIsMigratedToTheLatestVersionInWALMode() throws {
        let folder = Support.temporaryFolder()
        // A missing file and an empty file (what `touch` leaves) both start a new database.
        #expect(FileManager.default.createFile(atPath: folder + "/empty.sqlite", contents: Data()))
        for path in [folder + "/deep/studio.sqlite", folder + "/empty.sqlite"] {
            let store = try StudioStore(path: path)
            #expect(store.notice == nil)
            #expect(try store.records().isEmpty)
            let first = try store.add(file: "/o/1.png", date: Self.date, metadata: Support.metadata(seed: 1))
            #expect(first.id == 1)
            let queue = try DatabaseQueue(path: path)
            #expect(try queue.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations") } == StudioSchema.versions)
            #expect(try queue.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        }
    }

    @Test func recordsKeepEveryParameterStarsNotesAndDeletes() throws {
        let store = try StudioStore(path: Support.temporaryFolder() + "/studio.sqlite")
        var metadata = Support.metadata(seed: 18_446_744_073_709_551_615, prompt: "a Red circle, 水彩")
        (metadata.negativePrompt, metadata.skipLayers, metadata.skipLayerScale, metadata.strength) = ("blur", [7, 8], 2.8, 0.4)
        let a = try store.add(file: "/o/1.png", date: Self.date, metadata: metadata)
        let b = try store.add(file: "/o/2.png", date: Self.date.addingTimeInterval(1), metadata: Support.metadata(seed: 2, prompt: "a blue 50% square"))
        try store.setFavorite(id: a.id, true)
        try store.setNote(id: a.id, "keep: the best one")
        let read = try store.record(id: a.id)
        #expect(read.metadata == metadata && read.favorite && read.note == "keep: the best one" && read.date == Self.date && read.file == "/o/1.png")
        #expect(try store.records().map(\.id) == [b.id, a.id])
        #expect(try store.records(favoritesOnly: true).map(\.id) == [a.id])
        #expect(try store.records(matching: "red CIRCLE").map(\.id) == [a.id])
        #expect(try store.records(matching: "50%").map(\.id) == [b.id])
        #expect(try store.records(matching: "%").map(\.id) == [b.id])
        #expect(try store.records(limit: 1).map(\.id) == [b.id])
        try store.delete(id: b.id)
        #expect(try store.records().map(\.id) == [a.id])
        #expect(throws: StoreError("no image #\(b.id) in \(store.path)")) { try store.record(id: b.id) }
        #expect(throws: StoreError.self) { try store.setFavorite(id: 99, true) }
        #expect(throws: StoreError.self) { try store.delete(id: 99) }
    }

    /// Every earlier schema version: a database left there (rows written with the columns it had) opens,
    /// migrates to the latest, and keeps its rows.
    @Test(arguments: StudioSchema.versions.dropLast())
    func olderVersionMigratesKeepingItsRows(_ version: String) throws {
        let path = Support.temporaryFolder() + "/studio.sqlite"
        let metadata = Support.metadata(seed: 5, prompt: "made at \(version)")
        do {
            let queue = try DatabaseQueue(path: path)
            try StudioSchema.migrator(legacyHistory: nil, imported: .init()).migrate(queue, upTo: version)
            try queue.write { db in
                try db.execute(sql: """
                    INSERT INTO image (file, createdAt, prompt, model, seconds, metadata, favorite) VALUES (?, ?, ?, ?, ?, ?, 1)
                    """, arguments: ["/o/5.png", Self.date, metadata.prompt, metadata.model, 1.5, metadata.json])
            }
        }
        let store = try StudioStore(path: path)
        let records = try store.records()
        #expect(records == [HistoryRecord(id: 1, file: "/o/5.png", date: Self.date, metadata: metadata, favorite: true, note: "")])
        try store.setNote(id: 1, "added after the migration")
        #expect(try store.record(id: 1).note == "added after the migration")
        let queue = try DatabaseQueue(path: path)
        #expect(try queue.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations") } == StudioSchema.versions)
    }

    @Test func databaseFromANewerSd3IsRefusedNotChanged() throws {
        let path = Support.temporaryFolder() + "/studio.sqlite"
        _ = try StudioStore(path: path)
        try DatabaseQueue(path: path).write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99')") }
        #expect(throws: StoreError("\(path): made by a newer sd3 (schema v99); this one knows \(StudioSchema.versions.last!)")) {
            try StudioStore(path: path)
        }
    }

    @Test func legacyHistoryIsImportedOnceAndKept() throws {
        let folder = Support.temporaryFolder()
        let legacy = folder + "/history.jsonl"
        func line(_ id: Int, seed: UInt64) -> String {
            let m = Support.metadata(seed: seed).json
            return #"{"event":"generated","record":{"date":"2023-11-14T22:13:20Z","favorite":false,"file":"/o/\#(id).png","id":\#(id),"metadata":\#(m)}}"#
        }
        let text = [line(1, seed: 1), line(2, seed: 2), #"{"event":"favorite","favorite":true,"id":2}"#,
                    line(3, seed: 3), #"{"event":"favorite","favorite":true,"id":1}"#, #"{"event":"favorite","favorite":false,"id":1}"#,
                    #"{"event":"gener"#].joined(separator: "\n")
        try text.write(toFile: legacy, atomically: true, encoding: .utf8)
        do {
            let store = try StudioStore(path: folder + "/studio.sqlite")
            #expect(store.notice == "Imported 3 images from \(legacy) (kept as \(legacy).imported)")
            let records = try store.records()
            #expect(records.map(\.id) == [3, 2, 1] && records.map(\.favorite) == [false, true, false])
            #expect(records.map(\.metadata.seed) == [3, 2, 1] && records[0].date == Self.date)
            #expect(try store.add(file: "/o/4.png", date: Self.date, metadata: Support.metadata()).id == 4)
        }
        #expect(!FileManager.default.fileExists(atPath: legacy))
        #expect(try String(contentsOfFile: legacy + ".imported", encoding: .utf8) == text)
        // A history.jsonl that appears later (an old sd3 still running) is not imported a second time.
        try text.write(toFile: legacy, atomically: true, encoding: .utf8)
        let again = try StudioStore(path: folder + "/studio.sqlite")
        #expect(try again.notice == nil && again.records().count == 4)
        #expect(FileManager.default.fileExists(atPath: legacy))
    }

    @Test(arguments: ["garbage", "truncated"])
    func corruptDatabaseIsMovedAsideAndReported(_ damage: String) throws {
        let folder = Support.temporaryFolder()
        let path = folder + "/studio.sqlite"
        if damage == "garbage" {
            var generator = SystemRandomNumberGenerator()
            try Data((0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
        } else {
            do {
                let store = try StudioStore(path: path)
                for i in 0..<300 { try store.add(file: "/o/\(i).png", date: Self.date, metadata: Support.metadata(seed: UInt64(i))) }
            }  // the last connection closing checkpoints the WAL into the file
            let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            #expect(size > 16384, "the database should span several pages: \(size) bytes")
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            try handle.truncate(atOffset: UInt64(size / 2))
            try handle.close()
        }
        let damaged = try Data(contentsOf: URL(fileURLWithPath: path))
        let store = try StudioStore(path: path)
        let notice = try #require(store.notice)
        #expect(notice.hasPrefix("\(path) was unreadable (") && notice.contains("moved aside to \(path).corrupt-"), "\(notice)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("studio.sqlite.corrupt-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
        #expect(aside.count == 1, "\(aside)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + aside[0])) == damaged, "the damaged bytes must be kept as they were")
        #expect(try store.records().isEmpty)
        #expect(try store.add(file: "/o/new.png", date: Self.date, metadata: Support.metadata()).id == 1)
    }

    @Test func unwritableFolderIsAClearError() {
        #expect(throws: StoreError.self) { try StudioStore(path: "/proc/no-such/studio.sqlite") }
    }

    /// Two connections (two pools, as two studios have) writing at once from two threads: nothing is lost.
    @Test func concurrentWritersLoseNothing() throws {
        let path = Support.temporaryFolder() + "/studio.sqlite"
        let stores = [try StudioStore(path: path), try StudioStore(path: path)]
        let perWriter = 300
        final class Failures: @unchecked Sendable { var list: [String] = []; let lock = NSLock() }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 2) { writer in
            for i in 0..<perWriter {
                do {
                    let record = try stores[writer].add(file: "/w\(writer)/\(i).png", date: Self.date, metadata: Support.metadata(seed: UInt64(i)))
                    if i % 3 == 0 { try stores[writer].setFavorite(id: record.id, true) }
                } catch {
                    failures.lock.withLock { failures.list.append("\(writer)/\(i): \(error)") }
                }
            }
        }
        #expect(failures.list.isEmpty, "\(failures.list.prefix(3))")
        let records = try StudioStore(path: path).records()
        #expect(records.count == 2 * perWriter)
        #expect(Set(records.map(\.id)).count == 2 * perWriter)
        for writer in 0..<2 {
            let files = Set(records.filter { $0.file.hasPrefix("/w\(writer)/") }.map(\.file))
            #expect(files == Set((0..<perWriter).map { "/w\(writer)/\($0).png" }))
        }
        #expect(records.filter(\.favorite).count == 2 * ((perWriter + 2) / 3))
    }

    /// Eight connections creating the same new database at once, twenty times: each opens (no SQLITE_BUSY from
    /// the switch to WAL, no second v1 from GRDB reading the applied versions outside its transactions), the
    /// legacy file is imported once and exactly one opener reports it.
    @Test func concurrentFirstOpensMigrateOnce() throws {
        for round in 0..<20 {
            let folder = Support.temporaryFolder()
            let line = #"{"event":"generated","record":{"date":"2023-11-14T22:13:20Z","favorite":false,"file":"/o/1.png","id":1,"metadata":\#(Support.metadata().json)}}"#
            try line.write(toFile: folder + "/history.jsonl", atomically: true, encoding: .utf8)
            final class Outcomes: @unchecked Sendable { var list: [String] = []; let lock = NSLock() }
            let outcomes = Outcomes()
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                let outcome: String
                do {
                    let store = try StudioStore(path: folder + "/studio.sqlite")
                    try store.add(file: "/o/new-\(i).png", date: Self.date, metadata: Support.metadata())
                    outcome = store.notice ?? ""
                } catch {
                    outcome = "error: \(error)"
                }
                outcomes.lock.withLock { outcomes.list.append(outcome) }
            }
            #expect(!outcomes.list.contains { $0.hasPrefix("error") }, "round \(round): \(outcomes.list)")
            #expect(outcomes.list.filter { $0.hasPrefix("Imported 1 images") }.count == 1, "round \(round): \(outcomes.list)")
            let records = try StudioStore(path: folder + "/studio.sqlite").records()
            #expect(records.count == 9 && records.filter { $0.file == "/o/1.png" }.count == 1, "round \(round): \(records.map(\.file))")
        }
    }

    @Test func dataFolderFollowsXDG() {
        #expect(StudioStore.dataFolder(environment: ["XDG_DATA_HOME": "/x", "HOME": "/h"]) == "/x/sd3-studio")
        #expect(StudioStore.defaultPath(environment: ["HOME": "/h"]) == "/h/.local/share/sd3-studio/studio.sqlite")
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
