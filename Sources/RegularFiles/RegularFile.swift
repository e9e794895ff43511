import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads files named by a user, a model folder, a PNG's metadata or a favorites export: only regular files (a FIFO
/// blocks `open()` until a writer comes, `/dev/zero` never ends, a folder is not a file) and only up to a size
/// limit. A path is checked with `stat` before it is opened (a FIFO is never opened), then opened non-blocking and
/// checked again with `fstat`, so a file swapped for a FIFO in between is refused too. Symbolic links are followed,
/// as Hugging Face snapshots are folders of links into `blobs/`. The one reader of such files for every module.
public enum RegularFile {
    /// A path that is not a readable regular file, or holds more than it may.
    public struct Error: Swift.Error, Equatable, CustomStringConvertible {
        public let path: String
        public let reason: String
        public init(path: String, reason: String) { (self.path, self.reason) = (path, reason) }
        public var description: String { "\(path): \(reason)" }
    }

    /// What a mode names when it is not a regular file: "a folder", "a FIFO", "a device", "a socket"; nil for a regular file.
    public static func kind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFSOCK: return "a socket"
        default: return "a special file"
        }
    }

    /// What `path` names when it exists and is not a regular file (after links); nil otherwise.
    public static func kind(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return kind(info.st_mode)
    }

    /// nil when `path` is a regular file (after links), else why not, in words.
    public static func problem(_ path: String, what: String = "regular file") -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return reason(errno) }
        return kind(info.st_mode).map { "is \($0), not a \(what)" }
    }

    /// Opens a regular file for reading (checked before and after the open); the descriptor and the file's size.
    public static func open(_ path: String, what: String = "regular file") throws(Error) -> (descriptor: Int32, size: Int) {
        if let problem = problem(path, what: what) { throw Error(path: path, reason: problem) }
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Error(path: path, reason: reason(errno)) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let failure = reason(errno)
            close(fd)
            throw Error(path: path, reason: failure)
        }
        if let kind = kind(info.st_mode) {
            close(fd)
            throw Error(path: path, reason: "is \(kind), not a \(what)")
        }
        return (fd, Int(info.st_size))
    }

    /// The whole file, refused when it is not a regular file or holds more than `limit` bytes (also when it grows
    /// past the limit while it is read: reading stops at limit + 1).
    public static func contents(_ path: String, limit: Int, what: String = "regular file") throws(Error) -> [UInt8] {
        let (fd, size) = try open(path, what: what)
        defer { close(fd) }
        guard size <= limit else { throw Error(path: path, reason: "\(size) bytes, more than a \(what) may have (\(limit))") }
        var bytes = [UInt8](repeating: 0, count: min(size, limit) + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw Error(path: path, reason: reason(errno)) }
            if n == 0 { break }
            count += n
            if count == bytes.count, count <= limit { bytes += [UInt8](repeating: 0, count: min(limit + 1, 2 * count) - count) }
        }
        guard count <= limit else { throw Error(path: path, reason: "more than a \(what) may have (\(limit) bytes)") }
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
