import Checksums
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a training checkpoint records as "the model it belongs to": SHA-256 over each weight file's safetensors header
/// and 64 KiB read at 16 evenly spaced places of its data. The header alone would call two fine-tunes of one
/// architecture the same model; hashing gigabytes would take seconds; weights that differ anywhere differ in the
/// samples. Files are taken in the order given (a sharded folder: its shards by name).
public enum ModelFingerprint {
    static let samples = 16, sampleBytes = 1 << 16, headerLimit = 100 << 20

    public static func of(files: [String]) throws -> String {
        var hash = SHA256()
        for path in files {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TrainingError.data(path: path, reason: "cannot open the model's weights (\(String(cString: strerror(errno))))") }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw TrainingError.data(path: path, reason: "not a regular file") }
            let size = Int(info.st_size)
            func read(_ count: Int, at offset: Int) throws -> [UInt8] {
                var bytes = [UInt8](repeating: 0, count: count)
                var done = 0
                while done < count {
                    let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw TrainingError.data(path: path, reason: "the weights end early or cannot be read") }
                    done += n
                }
                return bytes
            }
            guard size >= 8 else { throw TrainingError.data(path: path, reason: "not a safetensors file") }
            let length = Int(try read(8, at: 0).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian } & 0x7FFF_FFFF_FFFF_FFFF)
            guard length <= min(headerLimit, size - 8) else { throw TrainingError.data(path: path, reason: "not a safetensors file (header of \(length) bytes)") }
            hash.update(try read(8 + length, at: 0))
            let data = 8 + length, span = size - data
            for k in 0..<samples where span > 0 {
                let count = min(sampleBytes, span)
                hash.update(try read(count, at: data + (span - count) * k / (samples - 1)))
            }
        }
        return SHA256.hex(hash.finish())
    }
}
