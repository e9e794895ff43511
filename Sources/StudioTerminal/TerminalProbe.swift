import Foundation

/// The terminal I/O of detection: the probe on /dev/tty before ncurses starts, and the cell size in pixels.
public enum TerminalProbe {
    /// Sends `GraphicsDetection.probeQuery` with /dev/tty in raw mode and reads replies until the DA1 reply or
    /// the timeout; the terminal mode is restored (dropping any unread late reply) before returning. nil when
    /// there is no terminal or nothing answered in time.
    public static func run(timeout: Duration = .milliseconds(150)) -> ProbeReply? {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { return nil }
        var raw = saved
        cfmakeraw(&raw)
        guard tcsetattr(fd, TCSANOW, &raw) == 0 else { return nil }
        defer { var restore = saved; tcsetattr(fd, TCSAFLUSH, &restore) }
        guard writeAll(fd, Array(GraphicsDetection.probeQuery.utf8)) else { return nil }
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            let milliseconds = Int32(max(1, left.components.attoseconds / 1_000_000_000_000_000 + left.components.seconds * 1000))
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, milliseconds) > 0 else { break }
            var chunk = [UInt8](repeating: 0, count: 256)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { break }
            received += chunk[0..<count]
            if GraphicsDetection.parse(received).complete { break }
        }
        let reply = GraphicsDetection.parse(received)
        return reply.complete || reply.kitty ? reply : nil
    }

    /// The size of one character cell in pixels from `TIOCGWINSZ`, or 10×20 when the terminal does not fill in
    /// `ws_xpixel`/`ws_ypixel` (many do not).
    public static func cellSize(fileDescriptor: Int32 = STDOUT_FILENO) -> CellSize {
        var size = winsize()
        guard ioctl(fileDescriptor, UInt(TIOCGWINSZ), &size) == 0 else { return .fallback }
        return CellSize(windowColumns: Int(size.ws_col), rows: Int(size.ws_row),
                        pixelWidth: Int(size.ws_xpixel), pixelHeight: Int(size.ws_ypixel))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 { if errno == EINTR { continue }; return false }
            offset += written
        }
        return true
    }
}

/// A character cell's size in pixels.
public struct CellSize: Sendable, Equatable {
    public var width: Int, height: Int
    public init(width: Int, height: Int) { (self.width, self.height) = (width, height) }

    public static let fallback = CellSize(width: 10, height: 20)

    /// From a `winsize`: the window's pixel size over its cell count, when both are known.
    public init(windowColumns: Int, rows: Int, pixelWidth: Int, pixelHeight: Int) {
        if windowColumns > 0, rows > 0, pixelWidth >= windowColumns, pixelHeight >= rows {
            self.init(width: pixelWidth / windowColumns, height: pixelHeight / rows)
        } else {
            self = .fallback
        }
    }
}
