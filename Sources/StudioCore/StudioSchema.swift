import Foundation
import GRDB
import ImageIO
import ImageMetadata
import RegularFiles
import SD3

/// The database's versions, oldest first. A released migration is never edited: a change of schema is a new
/// migration appended here, with a test that opens a database left at the previous version (StoreTests).
///
///     v1  image(id, file, createdAt, prompt, model, seconds, metadata JSON, favorite); imports history.jsonl
///     v2  image.note (a favorite's note), an index on favorite
enum StudioSchema {
    static let versions = ["v1", "v2"]

    /// `legacyHistory`: the JSON-lines file that v1 replaces; its records are copied in the v1 transaction, so
    /// they are imported exactly once (StudioStore serializes opens). `imported` counts them when v1 runs.
    static func migrator(legacyHistory: String?, imported: ImportCount) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE image (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    file TEXT NOT NULL,
                    createdAt DATETIME NOT NULL,
                    prompt TEXT NOT NULL,
                    model TEXT NOT NULL,
                    seconds DOUBLE,
                    metadata TEXT NOT NULL,
                    favorite BOOLEAN NOT NULL DEFAULT 0)
                """)
            imported.value = 0
            if let legacyHistory { imported.value = try importLegacy(legacyHistory, db) }
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: "ALTER TABLE image ADD COLUMN note TEXT NOT NULL DEFAULT ''")
            try db.execute(sql: "CREATE INDEX image_favorite ON image(favorite)")
        }
        return migrator
    }

    final class ImportCount: @unchecked Sendable {
        var value: Int?
    }

    /// The JSON-lines format of the store before SQLite: `{"event":"generated","record":{…}}` adds a record,
    /// `{"event":"favorite","id":N,"favorite":true}` stars or unstars it; unreadable lines (a torn last line) are
    /// skipped, as that store did. Records keep their ids, so `favorites show N` still finds image N.
    static func importLegacy(_ path: String, _ db: Database) throws -> Int {
        // A regular file only (a FIFO there would block the first open), of at most 1 GiB.
        guard let data = try? Data(RegularFile.contents(path, limit: 1 << 30, what: "history file")) else { return 0 }
        struct Record: Decodable { var id: Int; var file: String; var date: Date; var metadata: ImageMetadata }
        struct Event: Decodable { var event: String; var record: Record?; var id: Int?; var favorite: Bool? }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var records: [Record] = []
        var stars: [Int: Bool] = [:]
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let event = try? decoder.decode(Event.self, from: Data(line)) else { continue }
            if event.event == "generated", let record = event.record {
                records.append(record)
            } else if event.event == "favorite", let id = event.id, let favorite = event.favorite {
                stars[id] = favorite
            }
        }
        for r in records {
            try db.execute(sql: """
                INSERT OR REPLACE INTO image (id, file, createdAt, prompt, model, seconds, metadata, favorite)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.id, r.file, r.date, r.metadata.prompt, r.metadata.model, r.metadata.seconds,
                                 r.metadata.json, stars[r.id] ?? false])
        }
        return records.count
    }
}
