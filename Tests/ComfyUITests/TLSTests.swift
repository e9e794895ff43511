import CSSL
import Foundation
import Testing
@testable import ComfyUI
import LoopbackServer
#if canImport(Glibc)
import Glibc
#endif

/// comfyuis://: our client over TLS against a loopback server with a test CA's certificate for localhost only
/// (Fixtures/tls, scripts/comfyui/make_test_tls.sh). The server answers /system_stats, or opens a WebSocket and sends
/// one frame, and keeps each request's headers.
@Suite(.timeLimit(.minutes(10))) struct TLSTests {
    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("tls").path

    final class Server: @unchecked Sendable {
        let listener: LoopbackListener
        let port: Int
        let context: OpaquePointer
        let lock = NSLock()
        var heads: [String] = []

        init() throws {
            context = SSL_CTX_new(TLS_server_method())!
            SSL_CTX_use_certificate_chain_file(context, TLSTests.folder + "/server.pem")
            SSL_CTX_use_PrivateKey_file(context, TLSTests.folder + "/server.key", SSL_FILETYPE_PEM)
            listener = try LoopbackListener(backlog: 8)
            port = Int(listener.port)
            listener.start { [self] client in serve(client) }
        }

        func stop() { listener.stop() }

        deinit { SSL_CTX_free(context) }

        private func serve(_ client: Int32) {
            defer { close(client) }
            let ssl = SSL_new(context)!
            defer { SSL_free(ssl) }
            SSL_set_fd(ssl, client)
            // A client that refuses our certificate ends the handshake here.
            guard SSL_accept(ssl) == 1 else { return }
            var head: [UInt8] = []
            var byte = [UInt8](repeating: 0, count: 4096)
            while !String(decoding: head, as: UTF8.self).contains("\r\n\r\n") {
                let got = SSL_read(ssl, &byte, Int32(byte.count))
                if got <= 0 { return }
                head += byte[0..<Int(got)]
            }
            let text = String(decoding: head, as: UTF8.self)
            lock.withLock { heads.append(text) }
            var reply: [UInt8]
            if text.hasPrefix("GET /ws") {
                let key = text.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }?
                    .split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                reply = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(WebSocket.accept(key))\r\n\r\n".utf8)
                reply += ReplayServer.frame(opcode: 1, Array(#"{"type": "status", "data": {}}"#.utf8))
            } else {
                let body = #"{"system": {"comfyui_version": "0.3.75"}, "devices": [{"name": "cuda:0 NVIDIA H200 : cudaMallocAsync", "type": "cuda", "vram_total": 150000000000, "vram_free": 140000000000}]}"#
                reply = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
            }
            _ = SSL_write(ssl, reply, Int32(reply.count))
            if text.hasPrefix("GET /ws") { while SSL_read(ssl, &byte, Int32(byte.count)) > 0 {} }
            SSL_shutdown(ssl)
        }
    }

    static func address(_ server: Server, host: String = "localhost", trusted: Bool = true) -> ServerAddress {
        var address = ServerAddress(host: host, port: server.port, tls: true)
        if trusted { address.caFile = folder + "/ca.pem" }
        address.headers = [("Authorization", "Bearer tls-secret-token")]
        return address
    }

    @Test func httpAndWebSocketOverTLSCarryTheToken() throws {
        let server = try Server()
        defer { server.stop() }
        let stats = try ComfyUIServer(Self.address(server)).systemStats()
        #expect(stats.summary == "NVIDIA H200 (140.0 of 150.0 GB free)" && stats.comfyUIVersion == "0.3.75")
        let socket = try WebSocket(server: Self.address(server), path: "/ws?clientId=x", timeouts: Timeouts())
        #expect(try socket.receive() == .text(#"{"type": "status", "data": {}}"#))
        socket.close()
        let heads = server.lock.withLock { server.heads }
        #expect(heads.count == 2 && heads.allSatisfy { $0.contains("Authorization: Bearer tls-secret-token\r\n") })
    }

    @Test func anUntrustedCertificateIsOneLineWithoutTheToken() throws {
        let server = try Server()
        defer { server.stop() }
        #expect {
            try ComfyUIServer(Self.address(server, trusted: false)).systemStats()
        } throws: { error in
            let text = "\(error)"
            return text.contains("the server's certificate is not trusted") && !text.contains("secret") && !text.contains("\n")
        }
        #expect(server.lock.withLock { server.heads }.isEmpty, "nothing was sent before the certificate was checked")
    }

    /// The certificate names localhost; the same server reached as 127.0.0.1 is refused before any request.
    @Test func anotherHostNameIsRefused() throws {
        let server = try Server()
        defer { server.stop() }
        #expect {
            try ComfyUIServer(Self.address(server, host: "127.0.0.1")).systemStats()
        } throws: { error in
            "\(error)" == "TLS to 127.0.0.1:\(server.port): the server's certificate is not trusted (IP address mismatch)"
        }
        #expect(server.lock.withLock { server.heads }.isEmpty)
    }

    /// A CA file that is missing, a FIFO (which would block OpenSSL's read) or a device: one line, nothing sent.
    @Test func aCAFileThatIsNotAFileIsNamed() throws {
        let server = try Server()
        defer { server.stop() }
        let fifo = NSTemporaryDirectory() + "ca-\(UUID().uuidString).pem"
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        for (path, expected) in [("/nonexistent/ca.pem", "/nonexistent/ca.pem"), (fifo, "is a FIFO, not a PEM file"), ("/dev/zero", "is a device")] {
            var address = Self.address(server)
            address.caFile = path
            #expect {
                try ComfyUIServer(address).systemStats()
            } throws: { error in
                "\(error)".contains("cannot read the CA file") && "\(error)".contains(expected) && !"\(error)".contains("\n")
            }
        }
        #expect(server.lock.withLock { server.heads }.isEmpty)
    }
}
