import CSSL
import Foundation

/// A WebSocket client (RFC 6455) over `Connection`: the opening handshake with its accept check, masked frames out,
/// fragmented messages in, pings answered, our own pings to find a dead server. No extensions are offered, so a frame
/// with RSV bits set is a protocol error.
final class WebSocket: @unchecked Sendable {
    enum Message: Equatable {
        case text(String)
        case binary([UInt8])
    }

    /// The largest message accepted (a final PNG of a 2048² image is under 16 MB).
    static let messageLimit = 64 << 20
    let connection: Connection
    private let reader: ByteReader
    private let sendLock = NSLock()
    private let pingEvery: Double
    private var lastPing = Date()

    /// Opens `path` (with its query) on `server`; fails unless the server switches protocols with the right accept key.
    init(server: ServerAddress, path: String, timeouts: Timeouts) throws(RemoteError) {
        connection = try Connection(host: server.host, port: server.port, tls: server.tls, caFile: server.caFile,
                                    connectTimeout: timeouts.connect, readTimeout: timeouts.socket / 3)
        reader = ByteReader(connection)
        pingEvery = timeouts.socket / 3
        do throws(RemoteError) {
            var nonce = [UInt8](repeating: 0, count: 16)
            for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
            let key = Data(nonce).base64EncodedString()
            var head = "GET \(server.prefix)\(path) HTTP/1.1\r\nHost: \(HTTPClient.hostHeader(server))\r\nUser-Agent: sd3-studio\r\n"
            head += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
            for (name, value) in server.headers { head += "\(name): \(value)\r\n" }
            try connection.write(Array((head + "\r\n").utf8))
            let (status, headers) = try HTTPClient.parseHead(reader.head(limit: 65_536, what: "the WebSocket handshake"), from: server)
            guard status == 101 else {
                throw RemoteError("\(server.name) refused the WebSocket \(path.split(separator: "?").first ?? ""): HTTP \(status)\(status == 401 || status == 403 ? " (check the backend's token or header)" : "")")
            }
            guard headers["upgrade"]?.lowercased() == "websocket", headers["sec-websocket-accept"] == Self.accept(key) else {
                throw RemoteError("\(server.name) answered the WebSocket handshake without the right Upgrade and Sec-WebSocket-Accept")
            }
        } catch {
            connection.close()
            throw error
        }
    }

    deinit { connection.close() }

    /// RFC 6455 §4.2.2: base64(SHA-1(key + the protocol's GUID)).
    static func accept(_ key: String) -> String {
        let bytes = Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        _ = SHA1(bytes, bytes.count, &digest)
        return Data(digest).base64EncodedString()
    }

    /// From any thread: a blocked `receive` ends with "cancelled".
    func cancel() { connection.cancel() }

    func close() {
        try? send(opcode: 0x8, payload: [0x03, 0xE8])
        connection.close()
    }

    func send(text: String) throws(RemoteError) { try send(opcode: 0x1, payload: Array(text.utf8)) }

    private func send(opcode: UInt8, payload: [UInt8]) throws(RemoteError) {
        var frame: [UInt8] = [0x80 | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65_536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF)) }
        }
        // Clients mask every frame (§5.3) with a fresh key.
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        sendLock.lock()
        defer { sendLock.unlock() }
        try connection.write(frame)
    }

    /// The next whole message. Pings are answered; a silence of a third of the socket timeout sends our ping, and two
    /// more thirds without a byte end the wait with an error; a close frame ends it with "closed".
    func receive() throws(RemoteError) -> Message {
        var opcode: UInt8 = 0
        var message: [UInt8] = []
        while true {
            let (fin, code, payload) = try frame()
            switch code {
            case 0x9:
                try send(opcode: 0xA, payload: payload)
                continue
            case 0xA: continue
            case 0x8:
                let code = payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 1005
                let reason = payload.count > 2 ? String(decoding: payload[2...], as: UTF8.self).oneLineShown : ""
                try? send(opcode: 0x8, payload: Array(payload.prefix(2)))
                throw RemoteError(link: "\(connection.name) closed the WebSocket (code \(code)\(reason.isEmpty ? "" : ": \(reason)"))")
            case 0x0:
                guard opcode != 0 else { throw protocolError("a continuation frame without a message") }
                message += payload
            case 0x1, 0x2:
                guard opcode == 0 else { throw protocolError("a new message inside a fragmented one") }
                opcode = code
                message = payload
            default: throw protocolError("opcode \(code)")
            }
            guard message.count <= Self.messageLimit else { throw RemoteError("\(connection.name) sent a WebSocket message over \(Self.messageLimit) bytes") }
            if fin && opcode != 0 {
                if opcode == 0x2 { return .binary(message) }
                guard let text = String(validating: message, as: UTF8.self) else { throw protocolError("a text message that is not UTF-8") }
                return .text(text)
            }
        }
    }

    private func protocolError(_ what: String) -> RemoteError {
        RemoteError("\(connection.name) broke the WebSocket protocol: \(what)")
    }

    /// One frame (§5.2): FIN, opcode, unmasked payload of at most `messageLimit` bytes.
    private func frame() throws(RemoteError) -> (fin: Bool, opcode: UInt8, payload: [UInt8]) {
        let head = try waitingRead(2)
        guard head[0] & 0x70 == 0 else { throw protocolError("reserved bits set") }
        guard head[1] & 0x80 == 0 else { throw protocolError("a masked frame from the server") }
        let opcode = head[0] & 0x0F
        var length = UInt64(head[1] & 0x7F)
        if length == 126 {
            let bytes = try waitingRead(2)
            length = UInt64(bytes[0]) << 8 | UInt64(bytes[1])
        } else if length == 127 {
            length = try waitingRead(8).reduce(0) { $0 << 8 | UInt64($1) }
        }
        if opcode >= 0x8 && (length > 125 || head[0] & 0x80 == 0) { throw protocolError("a control frame of \(length) bytes or fragmented") }
        guard length <= UInt64(Self.messageLimit) else { throw RemoteError("\(connection.name) sent a WebSocket frame of \(length) bytes") }
        return (head[0] & 0x80 != 0, opcode, try waitingRead(Int(length)))
    }

    /// Reads with the connection's short timeout, pinging on each silence; three silences in a row is a dead link.
    private func waitingRead(_ count: Int) throws(RemoteError) -> [UInt8] {
        var silences = 0
        while true {
            do {
                return try reader.exactly(count, what: "a WebSocket frame")
            } catch {
                guard error.isTimeout, silences < 2 else {
                    if silences >= 2 { throw RemoteError(link: "\(connection.name) sent nothing on the WebSocket for \(Int(pingEvery * 3)) s, not even an answer to a ping") }
                    throw error
                }
                silences += 1
                try send(opcode: 0x9, payload: Array("sd3".utf8))
            }
        }
    }
}
