import Foundation
import Testing
@testable import ComfyUI

/// Our RFC 6455 client against hand-made frames from a loopback server.
@Suite(.timeLimit(.minutes(10))) struct WebSocketTests {
    static func open(_ frames: [[UInt8]], socket seconds: Double = 30) throws -> (ReplayServer, WebSocket) {
        let server = try ReplayServer(Transcript(exchanges: [.socketOpen(path: "/ws")] + frames.map { .raw($0) }))
        var timeouts = Timeouts()
        timeouts.socket = seconds
        return (server, try WebSocket(server: server.address, path: "/ws?clientId=test", timeouts: timeouts))
    }

    static func frame(_ first: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var frame = ReplayServer.frame(opcode: 0, payload)
        frame[0] = first
        return frame
    }

    /// RFC 6455 §1.3's worked example.
    @Test func theAcceptKeyOfTheRFC() {
        #expect(WebSocket.accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func fragmentsAroundAPingMakeOneMessage() throws {
        let (server, socket) = try Self.open([
            Self.frame(0x01, Array("step ".utf8)),       // text, not final
            Self.frame(0x89, Array("hi".utf8)),          // ping between fragments
            Self.frame(0x00, Array("3 of ".utf8)),       // continuation
            Self.frame(0x80, Array("28".utf8)),          // final continuation
            ReplayServer.frame(opcode: 2, [0, 0, 0, 1, 0, 0, 0, 2, 0x89]),
            ReplayServer.frame(opcode: 1, Array(String(repeating: "é", count: 40_000).utf8)),  // a 16-bit length
        ])
        defer { server.stop() }
        #expect(try socket.receive() == .text("step 3 of 28"))
        #expect(try socket.receive() == .binary([0, 0, 0, 1, 0, 0, 0, 2, 0x89]))
        #expect(try socket.receive() == .text(String(repeating: "é", count: 40_000)))
    }

    @Test(arguments: [
        ([0x81, 0x82, 1, 2, 3, 4, 0x41, 0x42] as [UInt8], "a masked frame from the server"),
        ([0xC1, 0x00], "reserved bits set"),
        ([0x83, 0x00], "opcode 3"),
        ([0x09, 0x00], "a control frame of 0 bytes or fragmented"),
        ([0x80, 0x01, 0x41], "a continuation frame without a message"),
        ([0x81, 0x02, 0xC3, 0x28], "a text message that is not UTF-8"),
        ([0x82, 0x7F, 0, 0, 0, 0x10, 0, 0, 0, 0], "a WebSocket frame of 68719476736 bytes"),
        ([0x88, 0x0C, 0x03, 0xE9] + Array("going\naway".utf8), "closed the WebSocket (code 1001: going\\naway)"),
    ])
    func brokenFramesEndInOneLine(_ bytes: [UInt8], _ expected: String) throws {
        let (server, socket) = try Self.open([bytes])
        defer { server.stop() }
        #expect {
            try socket.receive()
        } throws: { error in
            "\(error)".contains(expected) && !"\(error)".contains("\n")
        }
    }

    /// A server that stops sending is pinged at each third of the socket timeout, then given up on.
    @Test func aSilentServerIsGivenUpOn() throws {
        let (server, socket) = try Self.open([], socket: 0.9)
        defer { server.stop() }
        let start = Date()
        #expect {
            try socket.receive()
        } throws: { error in
            "\(error)".contains("not even an answer to a ping") && (error as? RemoteError)?.isLink == true
        }
        #expect(Date().timeIntervalSince(start) > 0.8)
    }

    /// `cancel()` from another thread ends a blocked receive at once, not at the receive's next wake-up: with a
    /// 600 s socket timeout that wake-up (the first ping) is 200 s away, so the bound tells the two apart on a machine
    /// however loaded, and a receive that ignored the cancel would end with the ping's error, not "cancelled".
    @Test func cancelEndsABlockedReceive() async throws {
        let (server, socket) = try Self.open([], socket: 600)
        defer { server.stop() }
        let start = Date()
        Thread { Thread.sleep(forTimeInterval: 0.2); socket.cancel() }.start()
        #expect(throws: RemoteError(link: "cancelled")) { try socket.receive() }
        #expect(Date().timeIntervalSince(start) < 100)
    }

    @Test func aServerThatIsNotThereIsOneLine() throws {
        let server = try ReplayServer(Transcript(exchanges: []))
        let address = server.address
        server.stop()
        Thread.sleep(forTimeInterval: 0.1)
        #expect {
            try WebSocket(server: address, path: "/ws", timeouts: Timeouts())
        } throws: { error in
            "\(error)" == "cannot connect to 127.0.0.1:\(address.port): Connection refused" && (error as? RemoteError)?.isLink == true
        }
    }
}
