import Checksums
import Foundation
import LoopbackServer
#if canImport(Glibc)
import Glibc
#endif

/// A Hugging Face Hub on loopback, with the endpoints huggingface_hub uses: model info with siblings,
/// `resolve/<commit>/<file>` (LFS files redirect to a "CDN" on another host name), Range requests, and
/// 401/403/404 for gated and missing repos. Blocking sockets, one thread per connection, `Connection: close`:
/// only a test server, so plain and small beats fast.
/// A hostile hub too: per route (a path without its query) it can redirect anywhere, flood or drip a body, stay
/// silent, or serve another model info than its files.
final class FakeHub: @unchecked Sendable {
    struct File { var path: String; var data: Data; var lfs: Bool }
    struct Request { var path: String; var range: String?; var authorization: String?; var host: String? }
    /// A body sent `chunk` bytes at a time with `delay` seconds between chunks, `total` bytes in all (nil: until the
    /// client hangs up), announced with `contentLength` (nil: no Content-Length, the body ends when the connection does).
    struct Flood {
        var contentLength: Int?
        var total: Int?
        var chunk = 65_536
        var delay = 0.0
        var status = 200
        var headers: [String: String] = [:]
    }

    static let commit = "0123456789abcdef0123456789abcdef01234567"
    static let goodToken = "hf_goodTOKENthatMustNeverLeak123"
    /// A valid token whose owner has not accepted the licence.
    static let unlicensedToken = "hf_noLICENCEtokenNeverPrinted456"

    let repo: String
    let files: [File]
    let gated: Bool
    /// SHA-256 per path, computed once: the debug build hashes at about 2 MB/s.
    let hashes: [String: String]
    let port: UInt16
    private let listener: LoopbackListener
    private let lock = NSLock()
    private var log: [Request] = []
    private var stopped = false
    /// Per file path: serve only this many bytes of the next response, then drop the connection.
    private var cuts: [String: Int] = [:]
    /// Per file path: how many next responses carry a flipped byte.
    private var corruptions: [String: Int] = [:]
    /// File paths whose next response sends half its body and then hangs until `release()`: a stuck transfer to cancel.
    private var stalls: Set<String> = []
    private var released = false
    private var redirects: [String: (status: Int, location: String)] = [:]
    private var floods: [String: Flood] = [:]
    private var silent: Set<String> = []
    private var infoBody: Data?

    init(repo: String, files: [File], gated: Bool = false) throws {
        self.repo = repo
        self.files = files
        self.gated = gated
        hashes = Dictionary(uniqueKeysWithValues: files.map { ($0.path, SHA256.hex($0.data)) })
        listener = try LoopbackListener()
        port = listener.port
        listener.start { [self] client in serve(client) }
    }

    deinit { stop() }

    /// Stops accepting and ends floods and silences in progress.
    func stop() {
        lock.withLock { stopped = true }
        listener.stop()
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }
    var requests: [Request] { lock.withLock { log } }
    func cut(_ path: String, after bytes: Int) { lock.withLock { cuts[path] = bytes } }
    func corrupt(_ path: String, times: Int) { lock.withLock { corruptions[path] = times } }
    func stall(_ path: String) { lock.withLock { _ = stalls.insert(path) } }
    func release() { lock.withLock { released = true } }
    func redirect(_ route: String, to location: String, status: Int = 302) { lock.withLock { redirects[route] = (status, location) } }
    func flood(_ route: String, _ flood: Flood) { lock.withLock { floods[route] = flood } }
    /// Reads the request and never answers.
    func silence(_ route: String) { lock.withLock { _ = silent.insert(route) } }
    /// Back to serving the route plainly.
    func calm(_ route: String) { lock.withLock { redirects[route] = nil; floods[route] = nil; silent.remove(route) } }
    /// Model info other than the files': hostile names, sizes, blobs.
    func serveInfo(_ body: Data) { lock.withLock { infoBody = body } }

    var infoRoute: String { "/api/models/\(repo)/revision/main" }
    func resolveRoute(_ path: String) -> String { "/\(repo)/resolve/\(Self.commit)/\(path)" }

    /// Model info JSON with these siblings (`rfilename`, `size`, `blobId`, `lfs` as the hub spells them).
    static func info(siblings: [[String: Any]], sha: String = commit) -> Data {
        try! JSONSerialization.data(withJSONObject: ["id": "x", "sha": sha, "siblings": siblings])
    }

    func sha256(_ file: File) -> String { hashes[file.path]! }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var head = Data()
        var byte = [UInt8](repeating: 0, count: 4096)
        while !head.contains("\r\n\r\n".data(using: .utf8)!) {
            let count = recv(client, &byte, byte.count, 0)
            if count <= 0 { return }
            head.append(contentsOf: byte[0..<count])
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let target = lines[0].split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let path = target.removingPercentEncoding ?? target
        lock.withLock { log.append(Request(path: path, range: headers["range"], authorization: headers["authorization"], host: headers["host"])) }
        let route = String(path.prefix { $0 != "?" })
        let (redirect, flood, quiet) = lock.withLock { (redirects[route], floods[route], silent.contains(route)) }
        if let redirect { return send(client, status: redirect.status, body: Data(), extra: ["Location": redirect.location]) }
        if let flood { return send(client, flood) }
        if quiet { return waitForHangUp(client) }
        respond(client, path: path, headers: headers)
    }

    /// Headers, then the flood's body until its total, a failed send (the client hung up) or `stop()`.
    private func send(_ client: Int32, _ flood: Flood) {
        var head = "HTTP/1.1 \(flood.status) \(flood.status < 300 ? "OK" : "Error")\r\nConnection: close\r\n"
        if let length = flood.contentLength { head += "Content-Length: \(length)\r\n" }
        for (name, value) in flood.headers { head += "\(name): \(value)\r\n" }
        guard write(client, Data((head + "\r\n").utf8)) else { return }
        let chunk = Data(repeating: UInt8(ascii: " "), count: flood.chunk)
        var sent = 0
        while flood.total.map({ sent < $0 }) ?? true, lock.withLock({ !stopped }) {
            let part = chunk.prefix(flood.total.map { $0 - sent } ?? chunk.count)
            guard write(client, part) else { return }
            sent += part.count
            if flood.delay > 0 { usleep(UInt32(flood.delay * 1e6)) }
        }
    }

    private func waitForHangUp(_ client: Int32) {
        var byte: UInt8 = 0
        while lock.withLock({ !stopped }) {
            let count = recv(client, &byte, 1, Int32(MSG_DONTWAIT))
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return }
            usleep(10_000)
        }
    }

    private func write(_ client: Int32, _ bytes: Data) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let sent = Glibc.send(client, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return false }
                offset += sent
            }
            return true
        }
    }

    private func respond(_ client: Int32, path: String, headers: [String: String]) {
        let infoPrefix = "/api/models/\(repo)/revision/"
        let resolvePrefix = "/\(repo)/resolve/\(Self.commit)/"
        if path.hasPrefix("/api/models/") || path.hasPrefix("/\(repo)/") {
            guard path.hasPrefix(infoPrefix) || path.hasPrefix(resolvePrefix) else { return send(client, status: 404, body: Data("Repository not found".utf8)) }
            if let status = refusal(headers["authorization"]) { return send(client, status: status, body: Data("Access restricted".utf8)) }
        }
        if path.hasPrefix(infoPrefix) { return send(client, status: 200, body: lock.withLock { infoBody } ?? info()) }
        if path.hasPrefix(resolvePrefix), let file = files.first(where: { $0.path == String(path.dropFirst(resolvePrefix.count)) }) {
            // The real hub sends LFS files to its CDN; "localhost" is another host than "127.0.0.1", so the token must not follow.
            if file.lfs { return send(client, status: 302, body: Data(), extra: ["Location": "http://localhost:\(port)/cdn/\(sha256(file))"]) }
            return sendFile(client, file, range: headers["range"])
        }
        if path.hasPrefix("/cdn/"), let file = files.first(where: { $0.lfs && sha256($0) == path.dropFirst(5) }) {
            return sendFile(client, file, range: headers["range"])
        }
        send(client, status: 404, body: Data("Entry not found".utf8))
    }

    private func refusal(_ authorization: String?) -> Int? {
        switch authorization {
        case nil: return gated ? 401 : nil
        case "Bearer " + Self.goodToken: return nil
        case "Bearer " + Self.unlicensedToken: return 403
        default: return 401
        }
    }

    private func info() -> Data {
        let siblings: [[String: Any]] = files.map { file in
            var sibling: [String: Any] = ["rfilename": file.path, "size": file.data.count, "blobId": String(sha256(file).prefix(40).reversed())]
            if file.lfs { sibling["lfs"] = ["sha256": sha256(file), "size": file.data.count, "pointerSize": 134] }
            return sibling
        }
        let object: [String: Any] = ["id": repo, "sha": Self.commit, "gated": gated ? "manual" : false, "siblings": siblings]
        return try! JSONSerialization.data(withJSONObject: object)
    }

    private func sendFile(_ client: Int32, _ file: File, range: String?) {
        var start = 0
        if let range, range.hasPrefix("bytes="), let value = Int(range.dropFirst(6).prefix { $0 != "-" }) { start = value }
        guard start <= file.data.count else { return send(client, status: 416, body: Data()) }
        var body = file.data.subdata(in: start..<file.data.count)
        let (cut, corrupt, stall) = lock.withLock { () -> (Int?, Bool, Bool) in
            let cut = cuts.removeValue(forKey: file.path)
            let corrupt = (corruptions[file.path] ?? 0) > 0
            if corrupt { corruptions[file.path]! -= 1 }
            return (cut, corrupt, stalls.remove(file.path) != nil)
        }
        if corrupt, !body.isEmpty { body[body.startIndex + body.count / 2] ^= 0xFF }
        let extra = start > 0 ? ["Content-Range": "bytes \(start)-\(file.data.count - 1)/\(file.data.count)"] : [:]
        send(client, status: start > 0 ? 206 : 200, body: body, extra: extra, sendOnly: stall ? body.count / 2 : cut)
        while stall, lock.withLock({ !released && !stopped }) { usleep(10_000) }
    }

    /// `sendOnly` announces the whole body but writes only that many bytes: a connection lost mid-transfer.
    private func send(_ client: Int32, status: Int, body: Data, extra: [String: String] = [:], sendOnly: Int? = nil) {
        var head = "HTTP/1.1 \(status) \(status < 300 ? "OK" : "Error")\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in extra { head += "\(name): \(value)\r\n" }
        var bytes = Data((head + "\r\n").utf8)
        bytes.append(body.prefix(sendOnly ?? body.count))
        _ = write(client, bytes)
    }
}
