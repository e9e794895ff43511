import Foundation

extension String {
    /// Control characters escaped (a newline in a tensor name or a config value from a hostile file), so a message that
    /// quotes what a file holds stays one line.
    public var oneLine: String {
        guard unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return self }
        return unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
    }
}
