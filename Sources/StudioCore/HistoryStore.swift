import Foundation
import SD3

/// One finished generation: its number, its PNG and the parameters that made it.
public struct HistoryRecord: Sendable, Codable, Equatable {
    public var id: Int
    public var file: String
    public var date: Date
    public var metadata: ImageMetadata
    public var favorite: Bool

    public init(id: Int, file: String, date: Date, metadata: ImageMetadata, favorite: Bool = false) {
        (self.id, self.file, self.date, self.metadata, self.favorite) = (id, file, date, metadata, favorite)
    }
}

public struct HistoryError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The generation history and favorites, owned by this type alone (design.md: one owner per file on disk).
/// A JSON-lines file of events, only ever appended to: `generated` adds a record, `favorite` sets or clears a
/// star. Each event is one `write(2)` on an O_APPEND descriptor, so concurrent writers cannot interleave lines
/// and a crash leaves at worst a torn last line, which reading skips. SQLite replaces this with a later issue.
public struct HistoryStore: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// `$XDG_DATA_HOME/sd3-studio` (default ~/.local/share/sd3-studio).
    public static func dataFolder(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return xdg + "/sd3-studio" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/share/sd3-studio"
    }

    struct Event: Codable {
        var event: String
        var record: HistoryRecord?
        var id: Int?
        var favorite: Bool?
    }

    public func append(_ record: HistoryRecord) throws(HistoryError) {
        try write(Event(event: "generated", record: record))
    }

    public func setFavorite(id: Int, _ favorite: Bool) throws(HistoryError) {
        try write(Event(event: "favorite", id: id, favorite: favorite))
    }

    /// Every record in order, with stars applied; a missing file is an empty history.
    public func records() throws(HistoryError) -> [HistoryRecord] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        guard let data = FileManager.default.contents(atPath: path) else { throw HistoryError("\(path): cannot be read") }
        let decoder = Self.decoder
        var records: [HistoryRecord] = []
        var index: [Int: Int] = [:]
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let event = try? decoder.decode(Event.self, from: Data(line)) else { continue }
            if event.event == "generated", let record = event.record {
                index[record.id] = records.count
                records.append(record)
            } else if event.event == "favorite", let id = event.id, let favorite = event.favorite, let i = index[id] {
                records[i].favorite = favorite
            }
        }
        return records
    }

    public func favorites() throws(HistoryError) -> [HistoryRecord] { try records().filter(\.favorite) }

    private func write(_ event: Event) throws(HistoryError) {
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw HistoryError("\(folder): cannot create the history folder (\(error.localizedDescription))")
        }
        guard var line = try? Self.encoder.encode(event) else { throw HistoryError("\(path): the event could not be encoded") }
        line.append(UInt8(ascii: "\n"))
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { throw HistoryError("\(path): cannot open for appending (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        let written = line.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else { throw HistoryError("\(path): short write (\(written) of \(line.count) bytes)") }
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
