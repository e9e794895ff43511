import Foundation
import ImageMetadata
import SD3

/// One finished generation as the store keeps it: its row id, its PNG, when it was made, every parameter
/// (`ImageMetadata`: prompt, size, steps, guidance, seed, model, duration, …), and the favorite's star and note.
public struct HistoryRecord: Sendable, Codable, Equatable {
    public var id: Int
    public var file: String
    public var date: Date
    public var metadata: ImageMetadata
    public var favorite: Bool
    public var note: String

    public init(id: Int, file: String, date: Date, metadata: ImageMetadata, favorite: Bool = false, note: String = "") {
        (self.id, self.file, self.date, self.metadata, self.favorite, self.note) = (id, file, date, metadata, favorite, note)
    }
}

/// A store or output-folder failure, said in one line that names the file.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
