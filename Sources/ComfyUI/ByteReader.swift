/// Reads a connection in whole pieces: an HTTP head, exactly n bytes, or everything up to the close.
final class ByteReader {
    let connection: Connection
    private var buffer: [UInt8] = []
    private var start = 0

    init(_ connection: Connection) { self.connection = connection }

    private var available: Int { buffer.count - start }

    /// False when the server closed the connection.
    private func fill() throws(RemoteError) -> Bool {
        if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
        let more = try connection.read(upTo: 65_536)
        if more.isEmpty { return false }
        if start > 65_536 { buffer.removeFirst(start); start = 0 }
        buffer += more
        return true
    }

    /// The bytes up to and including the first CRLF CRLF, at most `limit` of them.
    func head(limit: Int, what: String) throws(RemoteError) -> [UInt8] {
        var scanned = start
        while true {
            if available >= 4 {
                var i = max(start, scanned - 3)
                while i + 3 < buffer.count {
                    if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
                        let head = Array(buffer[start..<(i + 4)])
                        start = i + 4
                        return head
                    }
                    i += 1
                }
                scanned = buffer.count
            }
            if available > limit { throw RemoteError("\(connection.name) sent \(what) longer than \(limit) bytes") }
            guard try fill() else { throw RemoteError(link: "\(connection.name) closed the connection before the end of \(what)") }
        }
    }

    func exactly(_ count: Int, what: String) throws(RemoteError) -> [UInt8] {
        while available < count {
            guard try fill() else { throw RemoteError(link: "\(connection.name) closed the connection in the middle of \(what)") }
        }
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        return bytes
    }

    /// Everything until the server closes, at most `limit` bytes.
    func rest(limit: Int, what: String) throws(RemoteError) -> [UInt8] {
        while try fill() {
            if available > limit { throw RemoteError("\(connection.name) sent \(what) longer than \(limit) bytes") }
        }
        let bytes = Array(buffer[start...])
        start = buffer.count
        return bytes
    }

    /// One CRLF-ended line (chunked transfer coding's size lines), without the CRLF.
    func line(limit: Int, what: String) throws(RemoteError) -> [UInt8] {
        while true {
            if let end = buffer[start...].firstIndex(of: 10) {
                var line = Array(buffer[start..<end])
                if line.last == 13 { line.removeLast() }
                start = end + 1
                return line
            }
            if available > limit { throw RemoteError("\(connection.name) sent a line longer than \(limit) bytes in \(what)") }
            guard try fill() else { throw RemoteError(link: "\(connection.name) closed the connection in the middle of \(what)") }
        }
    }
}
