import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.1 with an ephemeral port for the tests' fake servers (a Hugging Face hub, a ComfyUI
/// replay, a TLS server): one thread accepts, one thread per connection runs the handler, which owns the client
/// socket and closes it. `stop()` only shuts the listening socket down; the accept thread closes it when `accept` fails, so it
/// never calls `accept` again on a descriptor number that another test has opened since (that once made one test's
/// hub answer another test's requests).
public final class LoopbackListener: @unchecked Sendable {
    public let port: UInt16
    private let socket: Int32
    private let lock = NSLock()
    private var stopped = false
    /// Set under the lock when the accept thread closes the socket: `stop()` then leaves the number alone (another
    /// test may have opened it since).
    private var closed = false

    /// Binds and listens; connections wait in the backlog until `start`.
    public init(backlog: Int32 = 64) throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, backlog) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        socket = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    /// Accepts on a thread of its own until `stop()`, running `handle` on a new thread per connection.
    public func start(_ handle: @escaping @Sendable (Int32) -> Void) {
        Thread { [self] in acceptLoop(handle) }.start()
    }

    public var isStopped: Bool { lock.withLock { stopped } }

    /// Stops accepting (once; later calls do nothing). Connections already open go on until their handlers end.
    public func stop() {
        lock.withLock {
            if !stopped && !closed { shutdown(socket, Int32(SHUT_RDWR)) }
            stopped = true
        }
    }

    private func acceptLoop(_ handle: @escaping @Sendable (Int32) -> Void) {
        defer { lock.withLock { closed = true; close(socket) } }
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 {
                if isStopped || (errno != EINTR && errno != ECONNABORTED) { return }
                continue
            }
            if isStopped {
                close(client)
                return
            }
            Thread { handle(client) }.start()
        }
    }
}
