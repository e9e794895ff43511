import ArgumentParser
import Foundation
import ImageIO
import ImageMetadata
import RegularFiles
import SD3
import StudioCore

struct FavoritesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "favorites", abstract: "Images starred in the studio (F2), with their notes.",
        subcommands: [List.self, Show.self, Export.self, Import.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the starred images with their prompts and parameters.")

        @Flag(help: "JSON: an array of {id, file, date, prompt, note, favorite, parameters}.") var json = false

        func run() throws {
            let favorites = try Records.list(favoritesOnly: true)
            if json { return try Records.printJSON(favorites) }
            if favorites.isEmpty { print("No favorites yet: press F2 in the studio to star an image.") }
            Records.printTable(favorites)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every parameter of one image (starred or not), by its id.")

        @Argument(help: "The image's id (the first column of `favorites list` and `history list`).") var id: Int
        @Flag(help: "JSON: one {id, file, date, prompt, note, favorite, parameters}.") var json = false

        func run() throws {
            let record = try Records.open().record(id: id)
            if json { return try Records.printJSON(record) }
            print("Image #\(record.id)\(record.favorite ? " ★" : "")  \(ISO8601DateFormatter().string(from: record.date))")
            print("File: \(record.file)")
            if !record.note.isEmpty { print("Note: \(record.note)") }
            RecalledParameters(record.metadata).lines.dropFirst().forEach { print($0) }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the favorites as JSON (what `favorites import` reads).")

        @Argument(help: "The file to write (default: standard output); an existing file is not overwritten.") var file: String?

        func run() throws {
            let data = try Records.encoder.encode(try Records.list(favoritesOnly: true).map(Records.Entry.init))
            guard let file else { return print(String(decoding: data, as: UTF8.self)) }
            guard !FileManager.default.fileExists(atPath: file) else { throw StoreError("\(file): already exists (not overwritten)") }
            do { try data.write(to: URL(fileURLWithPath: file), options: .withoutOverwriting) } catch {
                throw StoreError("\(file): cannot write (\(error.localizedDescription))")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Star the images of a `favorites export` file: rows already there (same PNG path) get the star and the note, others are added.")

        @Argument(help: "A JSON file written by `sd3 favorites export`.") var file: String
        @Flag(help: "JSON: {added, updated}.") var json = false

        func run() throws {
            // A regular file only (a FIFO would block forever), of at most 256 MiB.
            let data: Data
            do { data = Data(try RegularFile.contents(file, limit: 256 << 20, what: "favorites export")) } catch {
                throw StoreError(error.description)
            }
            let entries: [Records.Entry]
            do { entries = try Records.decoder.decode([Records.Entry].self, from: data) } catch {
                throw StoreError("\(file): not a favorites export (a JSON array of {file, date, note, parameters}): \(Records.reason(error))")
            }
            let store = try Records.open()
            var (added, updated) = (0, 0)
            // One transaction per entry: a long import never holds the database against a studio that is saving.
            // Oldest first, so images get ids in the order they were made (an export lists the newest first).
            for entry in entries.sorted(by: { ($0.date, $0.id ?? 0) < ($1.date, $1.id ?? 0) }) {
                if let existing = try store.record(file: entry.file) {
                    try store.setFavorite(id: existing.id, true)
                    try store.setNote(id: existing.id, entry.note ?? existing.note)
                    updated += 1
                } else {
                    try store.add(file: entry.file, date: entry.date, metadata: entry.parameters, favorite: true, note: entry.note ?? "")
                    added += 1
                }
            }
            if json { print("{\"added\":\(added),\"updated\":\(updated)}") } else {
                print("Imported \(entries.count) favorites from \(file): \(added) added, \(updated) already there")
            }
        }
    }
}

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Every image the studio finished, newest first.", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the history, newest first.")

        @Flag(help: "JSON: an array of {id, file, date, prompt, note, favorite, parameters}.") var json = false
        @Option(help: "At most this many images (default: all).") var limit: Int?
        @Option(help: "Only prompts containing this text.") var search: String?

        func run() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit)") }
            let records = try Records.list(matching: search ?? "", limit: limit)
            if json { return try Records.printJSON(records) }
            if records.isEmpty { print("No history yet: images made by the studio or sd3 generate are listed here.") }
            Records.printTable(records)
        }
    }
}

/// What the favorites and history commands share: the store at its default place, the JSON shape, the table.
enum Records {
    static func open() throws -> StudioStore {
        let store = try StudioStore(path: StudioStore.defaultPath(environment: ProcessInfo.processInfo.environment))
        if let notice = store.notice { FileHandle.standardError.write(Data("sd3: \(notice)\n".utf8)) }
        return store
    }

    /// The records, and a line on standard error naming the rows that could not be read (they are skipped).
    static func list(favoritesOnly: Bool = false, matching text: String = "", limit: Int? = nil) throws -> [HistoryRecord] {
        let store = try open()
        let listing = try store.listing(favoritesOnly: favoritesOnly, matching: text, limit: limit)
        if !listing.damaged.isEmpty {
            let ids = listing.damaged.map { "#\($0)" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("sd3: skipped damaged rows \(ids) in \(store.path) (they cannot be read)\n".utf8))
        }
        return listing.records
    }

    struct Entry: Codable {
        var id: Int?
        var file: String
        var date: Date
        var prompt: String?
        var note: String?
        var favorite: Bool?
        var parameters: ImageMetadata

        init(_ r: HistoryRecord) {
            (id, file, date, prompt, note, favorite, parameters) = (r.id, r.file, r.date, r.metadata.prompt, r.note, r.favorite, r.metadata)
        }
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    static func printJSON(_ records: [HistoryRecord]) throws {
        print(String(decoding: try encoder.encode(records.map(Entry.init)), as: UTF8.self))
    }

    static func printJSON(_ record: HistoryRecord) throws {
        print(String(decoding: try encoder.encode(Entry(record)), as: UTF8.self))
    }

    static func printTable(_ records: [HistoryRecord]) {
        for r in records {
            let m = r.metadata
            print(String(format: "%5d ", r.id) + (r.favorite ? "★ " : "  ") + "seed \(m.seed)  \(m.width)×\(m.height)  \(m.steps) steps  \(r.file)")
            print("        \(m.prompt.replacingOccurrences(of: "\n", with: " "))" + (r.note.isEmpty ? "" : "  — \(r.note)"))
        }
    }

    /// A decoding error in a few words: the key path and what was wrong.
    static func reason(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case let .keyNotFound(key, context): return "missing \"\(key.stringValue)\" at \(path(context))"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            return "\(context.debugDescription) at \(path(context))"
        @unknown default: return "\(error)"
        }
    }

    static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.isEmpty ? "the top" : context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
