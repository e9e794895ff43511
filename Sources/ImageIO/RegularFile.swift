import Foundation

/// Reads files that came from a user, a favorites export or a PNG's metadata: only regular files (a FIFO would
/// block the reader forever, `/dev/zero` never ends, a folder is not a file), and only up to a size limit.
/// The path is checked with stat before it is opened (a FIFO is never opened), then opened non-blocking and
/// checked again with fstat, so a file swapped for a FIFO in between is refused too.
public enum RegularFile {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// What a path names, for messages: "a folder", "a FIFO", "a device", … or nil for a regular file.
    public static func kind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// The whole file; `limit` in bytes.
    public static func contents(_ path: String, limit: Int, what: String = "file") throws(Error) -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw Error(description: "\(path): \(reason(errno))") }
        if let kind = kind(info.st_mode) { throw Error(description: "\(path): is \(kind), not a \(what)") }
        guard info.st_size <= limit else { throw Error(description: "\(path): \(info.st_size) bytes, more than a \(what) may have (\(limit))") }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Error(description: "\(path): \(reason(errno))") }
        defer { close(fd) }
        guard fstat(fd, &info) == 0 else { throw Error(description: "\(path): \(reason(errno))") }
        if let kind = kind(info.st_mode) { throw Error(description: "\(path): is \(kind), not a \(what)") }
        // Reads until end of file, never past the limit: a file that grows while it is read stops at limit + 1.
        var bytes = [UInt8](repeating: 0, count: min(Int(info.st_size), limit) + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw Error(description: "\(path): \(reason(errno))") }
            if n == 0 { break }
            count += n
            if count == bytes.count, count <= limit { bytes += [UInt8](repeating: 0, count: min(limit + 1, 2 * count) - count) }
        }
        guard count <= limit else { throw Error(description: "\(path): more than a \(what) may have (\(limit) bytes)") }
        bytes.removeLast(bytes.count - count)
        return bytes
    }

    static func reason(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file"
        case EACCES: return "permission denied"
        default: return String(cString: strerror(code))
        }
    }
}
