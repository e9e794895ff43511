import ArgumentParser
import Foundation
import SD3
import StudioCore

struct FavoritesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "favorites", abstract: "Images starred in the studio (F2).", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the starred images with their prompts and parameters.")

        @Flag(help: "JSON: an array of {id, file, date, prompt, metadata}.") var json = false

        func run() throws {
            let store = HistoryStore(path: HistoryStore.dataFolder() + "/history.jsonl")
            let favorites = try store.favorites()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                let entries = favorites.map { Entry(id: $0.id, file: $0.file, date: $0.date, prompt: $0.metadata.prompt, parameters: $0.metadata) }
                print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            } else if favorites.isEmpty {
                print("No favorites yet: press F2 in the studio to star an image.")
            } else {
                for f in favorites {
                    print(String(format: "%05d  ", f.id) + "seed \(f.metadata.seed)  \(f.metadata.width)×\(f.metadata.height)  \(f.metadata.steps) steps  \(f.file)")
                    print("       \(f.metadata.prompt)")
                }
            }
        }

        struct Entry: Encodable {
            var id: Int
            var file: String
            var date: Date
            var prompt: String
            var parameters: ImageMetadata
        }
    }
}
