import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads only regular files. A FIFO blocks `open()` until a writer comes (forever, for a user who named one by
/// mistake), `/dev/zero` never ends and a folder is not a file, so each is refused by `stat` before any open;
/// symbolic links are followed, as Hugging Face snapshots are folders of links into `blobs/`.
public enum CheckedFile {
    /// nil when `path` is a regular file (after links), else why not, in words.
    public static func problem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return String(cString: strerror(errno)) }
        return kindProblem(info.st_mode)
    }

    /// What `path` names when it exists and is not a regular file: "a folder", "a FIFO", "a device", "a socket".
    public static func kind(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    static func kindProblem(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "not a regular file"
        case S_IFIFO: return "not a regular file (a FIFO)"
        case S_IFCHR, S_IFBLK: return "not a regular file (a device)"
        case S_IFSOCK: return "not a regular file (a socket)"
        default: return "not a regular file"
        }
    }

    /// Opens a regular file for reading: checked with `stat` before the open and with `fstat` after it (O_NONBLOCK, so
    /// a FIFO swapped in between cannot block either). Returns the descriptor and the file's size.
    public static func open(_ path: String) throws(CheckedFileError) -> (descriptor: Int32, size: Int) {
        if let problem = problem(path) { throw CheckedFileError(path: path, reason: problem) }
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw CheckedFileError(path: path, reason: String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CheckedFileError(path: path, reason: reason)
        }
        if let problem = kindProblem(info.st_mode) {
            close(fd)
            throw CheckedFileError(path: path, reason: problem)
        }
        return (fd, Int(info.st_size))
    }

    /// The whole file, refused when it is not a regular file or holds more than `limit` bytes (also when it grows
    /// past the limit while being read).
    public static func read(_ path: String, limit: Int) throws(CheckedFileError) -> Data {
        let (fd, size) = try open(path)
        defer { close(fd) }
        guard size <= limit else { throw CheckedFileError(path: path, reason: "\(size) bytes, more than the \(limit)-byte limit for this file") }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CheckedFileError(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { return data }
            data.append(contentsOf: chunk[0..<count])
            guard data.count <= limit else { throw CheckedFileError(path: path, reason: "more than the \(limit)-byte limit for this file") }
        }
    }
}

/// A file that is not a readable regular file, or is too large for what it should be.
public struct CheckedFileError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) { (self.path, self.reason) = (path, reason) }
    public var description: String { "\(path): \(reason)" }
}

extension String {
    /// Control characters escaped (a newline in a tensor name from a hostile file), so a message stays one line.
    public var oneLine: String {
        guard unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return self }
        return unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
    }
}
