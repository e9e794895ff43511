import CSSL
import Foundation
import RegularFiles
#if canImport(Glibc)
import Glibc
#endif

/// Why a talk with a server failed, in one line that names the server; tokens and headers never appear.
public struct RemoteError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    /// The link failed (no connection, a timeout, a close): the server may be gone, and another one could run the job.
    /// False: the server answered and said no.
    public let isLink: Bool
    /// A read that waited the whole read timeout.
    let isTimeout: Bool
    /// Nothing listens on the port (the server process is gone, not slow).
    let isRefused: Bool

    public init(_ description: String) { (self.description, isLink, isTimeout, isRefused) = (description, false, false, false) }

    init(link description: String, timeout: Bool = false, refused: Bool = false) {
        (self.description, isLink, isTimeout, isRefused) = (description, true, timeout, refused)
    }
}

/// One TCP connection, plain or TLS (OpenSSL, the system's CA store, host name checked), with a connect timeout and
/// a read timeout. Blocking sockets on the caller's thread; another thread may `cancel()` it, which shuts the socket
/// down so a blocked read returns at once. Only the owner closes the descriptor (in `close()`), so a cancel can never
/// touch a descriptor number the process has reused.
final class Connection: @unchecked Sendable {
    let host: String
    let port: Int
    private let socket: Int32
    private var ssl: OpaquePointer?
    private var context: OpaquePointer?
    private let lock = NSLock()
    private var cancelled = false
    private var closed = false

    /// `readTimeout`: the longest wait for any byte once connected.
    init(host: String, port: Int, tls: Bool, caFile: String? = nil, connectTimeout: Double, readTimeout: Double) throws(RemoteError) {
        self.host = host
        self.port = port
        socket = try Self.connect(host: host, port: port, timeout: connectTimeout)
        var limit = timeval(tv_sec: Int(readTimeout), tv_usec: Int((readTimeout - readTimeout.rounded(.down)) * 1e6))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var yes: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
        if tls {
            do { try startTLS(caFile: caFile) } catch { close(); throw error }
        }
    }

    deinit { close() }

    var name: String { "\(host):\(port)" }

    /// Shuts the socket down from any thread: a blocked read or write returns, and every later one fails.
    func cancel() {
        lock.withLock {
            guard !cancelled, !closed else { return }
            cancelled = true
            shutdown(socket, Int32(SHUT_RDWR))
        }
    }

    var isCancelled: Bool { lock.withLock { cancelled } }

    func close() {
        lock.withLock {
            guard !closed else { return }
            closed = true
            if let ssl { SSL_free(ssl) }
            if let context { SSL_CTX_free(context) }
            ssl = nil
            context = nil
            Glibc.close(socket)
        }
    }

    func write(_ bytes: [UInt8]) throws(RemoteError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { buffer -> Int in
                let start = buffer.baseAddress! + offset, count = buffer.count - offset
                if let ssl { return Int(SSL_write(ssl, start, Int32(min(count, Int(Int32.max))))) }
                return Glibc.send(socket, start, count, Int32(MSG_NOSIGNAL))
            }
            if sent <= 0 { throw failure("sending") }
            offset += sent
        }
    }

    /// Up to `count` bytes; an empty array when the server closed the connection.
    func read(upTo count: Int) throws(RemoteError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let got = buffer.withUnsafeMutableBytes { raw -> Int in
            if let ssl { return Int(SSL_read(ssl, raw.baseAddress, Int32(raw.count))) }
            return Glibc.recv(socket, raw.baseAddress, raw.count, 0)
        }
        if got == 0 || (got < 0 && ssl != nil && SSL_get_error(ssl, Int32(got)) == SSL_ERROR_ZERO_RETURN) {
            if isCancelled { throw RemoteError(link: "cancelled") }
            return []
        }
        if got < 0 { throw failure("reading from") }
        return Array(buffer[0..<got])
    }

    private func failure(_ doing: String) -> RemoteError {
        if isCancelled { return RemoteError(link: "cancelled") }
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { return RemoteError(link: "\(name) stopped answering (timeout while \(doing) it)", timeout: true) }
        return RemoteError(link: "\(doing) \(name) failed: \(String(cString: strerror(code)))")
    }

    /// getaddrinfo, then a non-blocking connect to each address with `timeout`, back to blocking once connected.
    private static func connect(host: String, port: Int, timeout: Double) throws(RemoteError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw RemoteError(link: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var refused = true
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let address = entry {
            entry = address.pointee.ai_next
            let fd = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
            if fd < 0 { continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var result = Glibc.connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&poller, 1, Int32(timeout * 1000))
                if ready == 0 {
                    Glibc.close(fd)
                    reason = "no answer within \(Int(timeout)) s"
                    refused = false
                    continue
                }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                result = error == 0 ? 0 : -1
                errno = error
            }
            if result != 0 {
                if errno != ECONNREFUSED { refused = false }
                reason = String(cString: strerror(errno))
                Glibc.close(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, flags)
            return fd
        }
        throw RemoteError(link: "cannot connect to \(host):\(port): \(reason)", refused: refused && reason != "no address")
    }

    private func startTLS(caFile: String?) throws(RemoteError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw RemoteError("TLS to \(name): \(Self.sslError())") }
        self.context = context
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // The system's CA store (SSL_CERT_FILE / SSL_CERT_DIR point it elsewhere, as for curl), plus the backend's own.
        SSL_CTX_set_default_verify_paths(context)
        if let caFile {
            // Only a regular file of a sane size reaches OpenSSL (a FIFO named as the CA file would block the connect).
            do { _ = try RegularFile.contents(caFile, limit: 16 << 20, what: "PEM file") } catch {
                throw RemoteError("TLS to \(name): cannot read the CA file: \(error)")
            }
            if SSL_CTX_load_verify_locations(context, caFile, nil) != 1 {
                throw RemoteError("TLS to \(name): cannot read the CA file \(caFile.oneLineShown): \(Self.sslError())")
            }
        }
        guard let ssl = SSL_new(context) else { throw RemoteError("TLS to \(name): \(Self.sslError())") }
        self.ssl = ssl
        SSL_set_fd(ssl, socket)
        _ = sd3_ssl_set_server_name(ssl, host)
        SSL_set1_host(ssl, host)
        if SSL_connect(ssl) != 1 {
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                throw RemoteError("TLS to \(name): the server's certificate is not trusted (\(String(cString: X509_verify_cert_error_string(verify))))")
            }
            throw RemoteError("TLS handshake with \(name) failed: \(Self.sslError())")
        }
    }

    private static func sslError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return String(cString: strerror(errno)) }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
