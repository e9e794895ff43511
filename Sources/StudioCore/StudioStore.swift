import Foundation
import GRDB
import ImageMetadata
import SD3

/// The favorites and history database, `studio.sqlite`, owned by this type alone (docs/architecture.md: one owner per file
/// on disk). SQLite in WAL mode through a GRDB pool: writes are IMMEDIATE transactions that wait up to
/// `busyTimeout` for another process's, so two studios saving at once both land.
public final class StudioStore: Sendable {
    public let path: String
    /// What opening had to say: a corrupt file moved aside, or the old history.jsonl imported.
    public let notice: String?
    /// A WAL pool; a read-only queue when the file or its folder cannot be written (`history list` still reads).
    private let pool: any DatabaseWriter
    static let busyTimeout: TimeInterval = 10

    /// `$XDG_DATA_HOME/sd3-studio` (default ~/.local/share/sd3-studio).
    public static func dataFolder(environment: [String: String]) -> String {
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return xdg + "/sd3-studio" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/share/sd3-studio"
    }

    public static func defaultPath(environment: [String: String]) -> String {
        dataFolder(environment: environment) + "/studio.sqlite"
    }

    /// Opens (creating and migrating) the database. A file SQLite calls corrupt or not a database is renamed to
    /// `studio.sqlite.corrupt-<UTC time>` (with its -wal and -shm) and a new one is started; `notice` says so.
    /// `history.jsonl` beside it, the store before SQLite, is imported once and renamed `history.jsonl.imported`.
    public init(path: String) throws(StoreError) {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StoreError("\(folder): cannot create the data folder (\(error.localizedDescription))")
        }
        // Opening (migrations, the one-time import and its rename) is serialized across processes and
        // connections by an flock on the data folder: GRDB reads the applied versions outside its transactions,
        // and SQLite can answer a concurrent switch to WAL with SQLITE_BUSY, so opens must not overlap. (Where
        // flock is not supported, e.g. some network file systems, opening goes on unserialized.)
        let lock = open(folder, O_RDONLY | O_DIRECTORY)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer {
            if lock >= 0 { close(lock) }
        }
        let legacy = folder + "/history.jsonl"
        var notices: [String] = []
        var opened: (any DatabaseWriter, Int?)
        do {
            opened = try Self.openPool(path, legacy: legacy)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB {
            let aside = try Self.moveAside(path)
            notices.append("\(path) was unreadable (\(error.message ?? "\(error.resultCode)")): moved aside to \(aside); started a new database")
            do { opened = try Self.openPool(path, legacy: nil) } catch { throw StoreError("\(path): \(Self.describe(error))") }
        } catch let error as StoreError {
            throw error
        } catch {
            guard FileManager.default.fileExists(atPath: path), access(folder, W_OK) != 0 || access(path, W_OK) != 0 else {
                throw StoreError("\(path): \(Self.describe(error))")
            }
            do { opened = (try Self.openReadOnly(path), nil) } catch { throw StoreError("\(path): \(Self.describe(error))") }
            notices.append("\(path) is read-only: images can be listed, not added or changed")
        }
        pool = opened.0
        if let imported = opened.1 {
            let renamed = legacy + ".imported"
            if rename(legacy, renamed) == 0 {
                notices.append("Imported \(imported) images from \(legacy) (kept as \(renamed))")
            } else {
                notices.append("Imported \(imported) images from \(legacy), which could not be renamed: \(String(cString: strerror(errno)))")
            }
        }
        notice = notices.isEmpty ? nil : notices.joined(separator: "; ")
    }

    /// The pool, migrated and checked. Returns how many legacy records this call imported (nil: none ran).
    private static func openPool(_ path: String, legacy: String?) throws -> (any DatabaseWriter, Int?) {
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        let pool = try DatabasePool(path: path, configuration: configuration)
        let legacyPath = legacy.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
        let count = StudioSchema.ImportCount()
        let migrator = StudioSchema.migrator(legacyHistory: legacyPath, imported: count)
        try migrator.migrate(pool)
        let check = try pool.read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
        guard check == ["ok"] else {
            try pool.close()
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: check.prefix(3).joined(separator: "; "))
        }
        let known = Set(StudioSchema.versions)
        if let newer = try pool.read({ try migrator.appliedIdentifiers($0) }).first(where: { !known.contains($0) }) {
            throw StoreError("\(path): made by a newer sd3 (schema \(newer)); this one knows \(StudioSchema.versions.last!)")
        }
        return (pool, legacyPath == nil ? nil : count.value)
    }

    /// SQLite needs to write the -shm file of a WAL database even to read it; where the folder is read-only and
    /// there is none, the file is opened as immutable (SQLite's `immutable=1` URI parameter: no locks, no -shm).
    private static func openReadOnly(_ path: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            _ = try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM image") }
            return queue
        } catch {
            let encoded = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
            let queue = try DatabaseQueue(path: "file:\(encoded)?immutable=1", configuration: configuration)
            _ = try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM image") }
            return queue
        }
    }

    private static func moveAside(_ path: String) throws(StoreError) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        var aside = path + ".corrupt-" + formatter.string(from: Date())
        var n = 1
        while FileManager.default.fileExists(atPath: aside) {
            n += 1
            aside = path + ".corrupt-" + formatter.string(from: Date()) + "-\(n)"
        }
        guard rename(path, aside) == 0 else {
            throw StoreError("\(path) is corrupt and could not be moved aside: \(String(cString: strerror(errno)))")
        }
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            _ = rename(path + suffix, aside + suffix)
        }
        return aside
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "SQLite error \(error.resultCode.rawValue)" }
        return "\(error)"
    }

    // MARK: Writing

    /// A finished image: a new history row; returns it with its id.
    @discardableResult
    public func add(file: String, date: Date, metadata: ImageMetadata, favorite: Bool = false, note: String = "") throws(StoreError) -> HistoryRecord {
        let id = try write { db in
            try db.execute(sql: """
                INSERT INTO image (file, createdAt, prompt, model, seconds, metadata, favorite, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [file, date, metadata.prompt, metadata.model, metadata.seconds, metadata.json, favorite, note])
            return Int(db.lastInsertedRowID)
        }
        return HistoryRecord(id: id, file: file, date: date, metadata: metadata, favorite: favorite, note: note)
    }

    public func setFavorite(id: Int, _ favorite: Bool) throws(StoreError) {
        try update(id, sql: "UPDATE image SET favorite = ? WHERE id = ?", [favorite, id])
    }

    public func setNote(id: Int, _ note: String) throws(StoreError) {
        try update(id, sql: "UPDATE image SET note = ? WHERE id = ?", [note, id])
    }

    /// Removes the row (the PNG is the caller's: OutputFolder's, or the user's).
    public func delete(id: Int) throws(StoreError) {
        try update(id, sql: "DELETE FROM image WHERE id = ?", [id])
    }

    private func update(_ id: Int, sql: String, _ arguments: StatementArguments) throws(StoreError) {
        let changed = try write { db in
            try db.execute(sql: sql, arguments: arguments)
            return db.changesCount
        }
        guard changed == 1 else { throw StoreError("no image #\(id) in \(path)") }
    }

    private func write<T>(_ body: @escaping (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.write(body) } catch { throw StoreError("\(path): \(Self.describe(error))") }
    }

    // MARK: Reading

    public func record(id: Int) throws(StoreError) -> HistoryRecord {
        let listing = try fetchListing("SELECT *, CAST(file AS BLOB) AS fileBytes FROM image WHERE id = ?", [id])
        if listing.damaged == [id] { throw StoreError("\(path): image #\(id) is damaged (its row cannot be read)") }
        guard let record = listing.records.first else { throw StoreError("no image #\(id) in \(path)") }
        return record
    }

    /// Newest first; `matching` keeps prompts containing the text (case-insensitive for ASCII, as SQLite's LIKE).
    public func records(favoritesOnly: Bool = false, matching text: String = "", limit: Int? = nil) throws(StoreError) -> [HistoryRecord] {
        try listing(favoritesOnly: favoritesOnly, matching: text, limit: limit).records
    }

    static func query(favoritesOnly: Bool, matching text: String, limit: Int?) -> (String, StatementArguments) {
        var sql = "SELECT *, CAST(file AS BLOB) AS fileBytes FROM image WHERE 1"
        var arguments: StatementArguments = []
        if favoritesOnly { sql += " AND favorite" }
        if !text.isEmpty {
            let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            sql += " AND prompt LIKE ? ESCAPE '\\'"
            arguments += ["%" + escaped + "%"]
        }
        sql += " ORDER BY id DESC"
        if let limit { sql += " LIMIT \(max(0, limit))" }
        return (sql, arguments)
    }

    /// The row with this file, if any (imports use it to skip what is already there).
    public func record(file: String) throws(StoreError) -> HistoryRecord? {
        try fetch("SELECT *, CAST(file AS BLOB) AS fileBytes FROM image WHERE file = ? ORDER BY id LIMIT 1", [file]).first
    }

    /// Records and the ids of rows that could not be decoded (a `file` that is not UTF-8 text, a column of the
    /// wrong type, parameters that are not ImageMetadata JSON): those are skipped, never a crash or a failed list.
    public struct Listing: Sendable, Equatable {
        public var records: [HistoryRecord] = []
        public var damaged: [Int] = []
    }

    /// As `records`, with the damaged rows' ids.
    public func listing(favoritesOnly: Bool = false, matching text: String = "", limit: Int? = nil) throws(StoreError) -> Listing {
        let (sql, arguments) = Self.query(favoritesOnly: favoritesOnly, matching: text, limit: limit)
        return try fetchListing(sql, arguments)
    }

    private func fetch(_ sql: String, _ arguments: StatementArguments) throws(StoreError) -> [HistoryRecord] {
        try fetchListing(sql, arguments).records
    }

    private func fetchListing(_ sql: String, _ arguments: StatementArguments) throws(StoreError) -> Listing {
        let rows: [Row]
        do { rows = try pool.read { try Row.fetchAll($0, sql: sql, arguments: arguments) } } catch {
            throw StoreError("\(path): \(Self.describe(error))")
        }
        var listing = Listing()
        for row in rows {
            if let record = Self.decode(row) {
                listing.records.append(record)
            } else if let id = Int.fromDatabaseValue(row["id"] as DatabaseValue) {
                listing.damaged.append(id)
            }
        }
        return listing
    }

    /// One row (with `fileBytes`, the file column as a BLOB) as a record, or nil when any column is not what the
    /// schema says. Every column goes through GRDB's optional conversions (`row[name] as T` traps on a value it
    /// cannot convert).
    static func decode(_ row: Row) -> HistoryRecord? {
        func column<T: DatabaseValueConvertible>(_ name: String, _ type: T.Type) -> T? {
            T.fromDatabaseValue(row[name] as DatabaseValue)
        }
        // The path's bytes as stored: SQLite hands invalid UTF-8 TEXT back repaired, which would name another file.
        guard let id = column("id", Int.self), let file = column("fileBytes", Data.self).flatMap({ String(validating: [UInt8]($0), as: UTF8.self) }),
              let date = column("createdAt", Date.self),
              let json = text(row["metadata"]), let favorite = column("favorite", Bool.self), let note = text(row["note"]),
              let metadata = ImageMetadata(json: json) else { return nil }
        return HistoryRecord(id: id, file: file, date: date, metadata: metadata, favorite: favorite, note: note)
    }

    /// A TEXT value, or a BLOB holding valid UTF-8; nil for anything else.
    static func text(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case let .string(text): return text
        case let .blob(data): return String(validating: [UInt8](data), as: UTF8.self)
        default: return nil
        }
    }
}
