import Foundation

/// What a server answered.
struct HTTPResponse: Sendable {
    var status: Int
    /// Names in lower case.
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Time limits of one server's requests.
public struct Timeouts: Sendable, Equatable {
    /// Connecting (TCP and TLS).
    public var connect: Double = 10
    /// The longest silence inside one HTTP answer.
    public var read: Double = 60
    /// The longest silence on the WebSocket while a job runs; the client pings every third of it, so only a dead
    /// server or network stays silent this long.
    public var socket: Double = 45
    /// How long a job whose socket dropped waits for its server to answer again before it counts as lost.
    public var recovery: Double = 60
    public init() {}
}

/// HTTP/1.1 requests of our own over `Connection` (one request per connection, `Connection: close`): the same code
/// and the same TLS, timeouts and cancel as the WebSocket, and nothing of FoundationNetworking's caches.
enum HTTPClient {
    /// The largest answer read (ComfyUI's full /object_info is a few MB).
    static let bodyLimit = 64 << 20

    static func send(_ method: String, _ path: String, to server: ServerAddress, timeouts: Timeouts,
                     headers: [(String, String)] = [], body: [UInt8]? = nil,
                     onConnect: (Connection) -> Void = { _ in }) throws(RemoteError) -> HTTPResponse {
        let connection = try Connection(host: server.host, port: server.port, tls: server.tls, caFile: server.caFile,
                                         connectTimeout: timeouts.connect, readTimeout: timeouts.read)
        defer { connection.close() }
        onConnect(connection)
        var head = "\(method) \(server.prefix)\(path) HTTP/1.1\r\nHost: \(hostHeader(server))\r\nUser-Agent: sd3-studio\r\n"
        head += "Accept: */*\r\nConnection: close\r\n"
        for (name, value) in server.headers + headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try connection.write(Array(head.utf8) + (body ?? []))
        let reader = ByteReader(connection)
        let (status, responseHeaders) = try parseHead(reader.head(limit: 65_536, what: "the answer's headers"), from: server)
        let what = "the answer to \(method) \(path)"
        var answer: [UInt8]
        if method == "HEAD" || status == 204 || status == 304 {
            answer = []
        } else if responseHeaders["transfer-encoding"]?.lowercased().contains("chunked") == true {
            answer = try chunked(reader, what: what)
        } else if let length = responseHeaders["content-length"] {
            guard let count = Int(length.trimmingCharacters(in: .whitespaces)), count >= 0 else {
                throw RemoteError("\(server.name) sent a bad Content-Length '\(length.oneLineShown)'")
            }
            guard count <= bodyLimit else { throw RemoteError("\(server.name) announced \(count) bytes for \(what), more than the \(bodyLimit) allowed") }
            answer = try reader.exactly(count, what: what)
        } else {
            answer = try reader.rest(limit: bodyLimit, what: what)
        }
        return HTTPResponse(status: status, headers: responseHeaders, body: answer)
    }

    static func hostHeader(_ server: ServerAddress) -> String {
        let host = server.host.contains(":") ? "[\(server.host)]" : server.host
        return (server.tls && server.port == 443) || (!server.tls && server.port == 80) ? host : "\(host):\(server.port)"
    }

    /// "HTTP/1.1 200 OK" and the header lines (names lower-cased; a repeated header keeps the last value).
    static func parseHead(_ bytes: [UInt8], from server: ServerAddress) throws(RemoteError) -> (Int, [String: String]) {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        let first = lines[0].split(separator: " ", maxSplits: 2)
        guard first.count >= 2, first[0].hasPrefix("HTTP/1."), let status = Int(first[1]), (100...599).contains(status) else {
            throw RemoteError("\(server.name) did not answer in HTTP: '\(lines[0].oneLineShown)'")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers)
    }

    /// RFC 9112 §7.1: hex size lines, each chunk followed by CRLF, a zero size, then trailers to an empty line.
    static func chunked(_ reader: ByteReader, what: String) throws(RemoteError) -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let line = String(decoding: try reader.line(limit: 4096, what: what), as: UTF8.self)
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let size = Int(sizeText, radix: 16), size >= 0 else {
                throw RemoteError("\(reader.connection.name) sent a bad chunk size '\(line.oneLineShown)' in \(what)")
            }
            if size == 0 {
                while !(try reader.line(limit: 4096, what: what)).isEmpty {}
                return body
            }
            guard body.count + size <= bodyLimit else { throw RemoteError("\(reader.connection.name) sent more than \(bodyLimit) bytes for \(what)") }
            body += try reader.exactly(size, what: what)
            _ = try reader.line(limit: 2, what: what)
        }
    }
}
