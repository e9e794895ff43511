/// A file's metadata that cannot be read, in one line naming the file (`sd3 recall` prints it as is).
public struct MetadataError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
