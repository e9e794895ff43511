import Foundation
@testable import ComfyUI
import LoopbackServer
#if canImport(Glibc)
import Glibc
#endif

/// What a real ComfyUI server said to our client, recorded by scripts/comfyui/record_proxy.py: HTTP exchanges and
/// WebSocket frames in the order the proxy saw them.
struct Transcript {
    enum Exchange {
        case http(method: String, path: String, requestBody: Any?, status: Int, headers: [String: String], body: [UInt8])
        case socketOpen(path: String)
        case text(String)
        case binary([UInt8])
        /// Bytes sent on the socket as they are (hand-made frames: fragments, pings, broken ones).
        case raw([UInt8])
        /// The server side closed the socket (a drop recorded by the proxy): the replay shuts it down there.
        case socketClose
        case socketClosedByClient
    }

    var exchanges: [Exchange]

    init(exchanges: [Exchange]) { self.exchanges = exchanges }

    init(named name: String) throws {
        let url = Bundle.module.url(forResource: "Fixtures/comfyui/\(name)", withExtension: "json")!
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        // Frames our client sent are in the recording too ("from": "client"); only the server's are replayed.
        exchanges = (root["exchanges"] as! [[String: Any]]).filter { ($0["from"] as? String) != "client" }.map { item in
            switch item["kind"] as! String {
            case "http":
                return .http(method: item["method"] as! String, path: item["path"] as! String, requestBody: item["request_body"],
                             status: item["status"] as! Int, headers: item["response_headers"] as? [String: String] ?? [:],
                             body: Self.bytes(item["response_body"]))
            case "ws_open": return .socketOpen(path: item["path"] as! String)
            case "ws_text": return .text(item["text"] as! String)
            case "ws_binary": return .binary(Array(Data(base64Encoded: item["base64"] as! String)!))
            // The client's own close needs nothing from the server; a close by the server or the proxy is replayed.
            default: return (item["by"] as? String) == "client" ? .socketClosedByClient : .socketClose
            }
        }
    }

    /// A recorded body: JSON values are re-serialised, `{"base64": …}` decoded.
    static func bytes(_ value: Any?) -> [UInt8] {
        guard let value, !(value is NSNull) else { return [] }
        if let object = value as? [String: Any], object.count == 1, let base64 = object["base64"] as? String { return Array(Data(base64Encoded: base64)!) }
        if let text = value as? String { return Array(text.utf8) }
        return Array(try! JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]))
    }

    /// The client and prompt ids the recorded client used (from its POST /prompt).
    var ids: [String] {
        for case let .http("POST", "/prompt", body?, _, _, _) in exchanges {
            if let body = body as? [String: Any], let client = body["client_id"] as? String, let prompt = body["prompt_id"] as? String { return [client, prompt] }
        }
        return []
    }
}

/// Plays a transcript back on loopback: each HTTP request is answered with the next recorded exchange of the same
/// method and path, and the WebSocket frames recorded after an answer are sent once that answer is out. What the client
/// sent that the recording did not expect is kept in `mismatches`. `dropSocket(afterFrames:)` closes the socket
/// mid-job to test reconnects.
final class ReplayServer: @unchecked Sendable {
    private let listener: LoopbackListener
    let port: UInt16
    private let lock = NSLock()
    private var exchanges: [Transcript.Exchange]
    private var position = 0
    private var socket: Int32?
    private var stopped = false
    private var framesSent = 0
    private var dropAfter: Int?
    private var mismatchList: [String] = []
    private var requestList: [(method: String, path: String, body: [UInt8], headers: [String: String])] = []
    /// Read under the lock: the server's threads append while a test polls.
    var mismatches: [String] { lock.withLock { mismatchList } }
    var requests: [(method: String, path: String, body: [UInt8], headers: [String: String])] { lock.withLock { requestList } }

    init(_ transcript: Transcript) throws {
        exchanges = transcript.exchanges
        listener = try LoopbackListener(backlog: 16)
        port = listener.port
        listener.start { [self] client in serve(client) }
    }

    var address: ServerAddress { ServerAddress(host: "127.0.0.1", port: Int(port)) }

    func dropSocket(afterFrames count: Int) { lock.withLock { dropAfter = count } }

    /// When the recording's socket drop is replayed, the whole server goes away with it (a crash, not a blip).
    var goesAwayWithTheSocket = false

    /// Stops answering: no new connections, and the open socket is shut down.
    /// The WebSocket's descriptor is only shut down, written to and closed under the lock, so no thread touches the
    /// number after it was closed (another test may have opened it since).
    func stop() {
        lock.withLock {
            stopped = true
            if let socket { shutdown(socket, Int32(SHUT_RDWR)) }
        }
        listener.stop()
    }

    private func serve(_ client: Int32) {
        var buffer: [UInt8] = []
        guard let headEnd = readHead(client, into: &buffer) else { Glibc.close(client); return }
        let head = String(decoding: buffer[..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = head[0].split(separator: " ")
        guard parts.count >= 2 else { Glibc.close(client); return }
        let (method, target) = (String(parts[0]), String(parts[1]))
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(buffer[(headEnd + 4)...])
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while body.count < length {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let got = recv(client, &chunk, chunk.count, 0)
            if got <= 0 { break }
            body += chunk[0..<got]
        }
        lock.withLock { requestList.append((method, target, body, headers)) }
        if target.hasPrefix("/ws") { return openSocket(client, headers: headers) }
        defer { Glibc.close(client) }
        let answer = lock.withLock { () -> (status: Int, headers: [String: String], body: [UInt8])? in
            guard let index = exchanges[position...].firstIndex(where: {
                if case let .http(m, p, _, _, _, _) = $0 { return m == method && Self.samePath(p, target) }
                return false
            }) else { return nil }
            if case let .http(_, _, _, status, headers, body) = exchanges[index] {
                // Frames recorded between the last answer and this one that were not sent yet (no socket) are skipped.
                position = index + 1
                return (status, headers, body)
            }
            return nil
        }
        guard let answer else {
            lock.withLock { mismatchList.append("\(method) \(target) was not in the recording after exchange \(position)") }
            return send(client, "HTTP/1.1 500 Replay\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
        var text = "HTTP/1.1 \(answer.status) Recorded\r\nContent-Length: \(answer.body.count)\r\nConnection: close\r\n"
        if let type = answer.headers["content-type"] { text += "Content-Type: \(type)\r\n" }
        send(client, text + "\r\n", answer.body)
        pushFrames()
    }

    /// The recorded path and the request's match; the WebSocket's query (a client id) may differ.
    static func samePath(_ recorded: String, _ actual: String) -> Bool {
        recorded == actual || (recorded.hasPrefix("/ws") && actual.hasPrefix("/ws"))
    }

    private func openSocket(_ client: Int32, headers: [String: String]) {
        let accept = WebSocket.accept(headers["sec-websocket-key"] ?? "")
        send(client, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n")
        lock.withLock {
            if let old = socket { shutdown(old, Int32(SHUT_RDWR)) }
            socket = client
            // Skip the recorded open itself.
            if position < exchanges.count, case .socketOpen = exchanges[position] { position += 1 }
        }
        pushFrames()
        // Read (and drop) what the client sends until it hangs up; answer pings.
        var byte = [UInt8](repeating: 0, count: 4096)
        while recv(client, &byte, byte.count, 0) > 0 {}
        lock.withLock {
            if socket == client { socket = nil }
            Glibc.close(client)
        }
    }

    /// Sends the frames that follow the current position, up to the next HTTP exchange.
    private func pushFrames() {
        while true {
            // Sent under the lock (frames are small; the client reads them as they come): see `stop()`.
            let more = lock.withLock { () -> Bool in
                guard let socket, position < exchanges.count else { return false }
                if let dropAfter, framesSent >= dropAfter {
                    self.dropAfter = nil
                    shutdown(socket, Int32(SHUT_RDWR))
                    return false
                }
                switch exchanges[position] {
                case let .text(text): position += 1; framesSent += 1; send(socket, "", Self.frame(opcode: 1, Array(text.utf8)))
                case let .binary(bytes): position += 1; framesSent += 1; send(socket, "", Self.frame(opcode: 2, bytes))
                case let .raw(bytes): position += 1; framesSent += 1; send(socket, "", bytes)
                case .socketOpen, .socketClosedByClient: position += 1
                case .socketClose:
                    position += 1
                    shutdown(socket, Int32(SHUT_RDWR))
                    self.socket = nil
                    if goesAwayWithTheSocket {
                        stopped = true
                        listener.stop()
                    }
                    return false
                case .http: return false
                }
                return true
            }
            guard more else { return }
        }
    }

    static func frame(opcode: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(UInt8(payload.count))
        } else if payload.count < 65_536 {
            frame += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        return frame + payload
    }

    private func readHead(_ client: Int32, into buffer: inout [UInt8]) -> Int? {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let end = (0..<max(0, buffer.count - 3)).first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10 }) { return end }
            let got = recv(client, &chunk, chunk.count, 0)
            if got <= 0 { return nil }
            buffer += chunk[0..<got]
        }
    }

    private func send(_ client: Int32, _ text: String, _ body: [UInt8] = []) {
        let bytes = Array(text.utf8) + body
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(client, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }
}
