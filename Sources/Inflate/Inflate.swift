import CZlib

/// zlib (RFC 1950) and gzip (RFC 1952) decompression through zlib, for the shipped CLIP vocabulary and compressed
/// PNG text chunks (Foundation on Linux has none).
public enum Inflate {
    public enum Format: Sendable {
        /// A zlib stream (PNG's zTXt and compressed iTXt).
        case zlib
        /// A gzip file.
        case gzip
    }

    /// The decompressed bytes, or nil when `data` is not one complete stream or would inflate past `limit` bytes
    /// (a small chunk must not expand into gigabytes).
    public static func decompress(_ data: [UInt8], format: Format, limit: Int = 1 << 30) -> [UInt8]? {
        // One address for the stream from init to end: zlib keeps a pointer to it and refuses calls from another.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        // 15 window bits, + 16 to expect a gzip header and trailer (zlib.h, inflateInit2).
        let bits: Int32 = format == .gzip ? 15 + 16 : 15
        guard inflateInit2_(stream, bits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = data
        return input.withUnsafeMutableBufferPointer { source -> [UInt8]? in
            stream.pointee.next_in = source.baseAddress
            stream.pointee.avail_in = UInt32(source.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { buffer -> (Int32, Int) in
                    stream.pointee.next_out = buffer.baseAddress
                    stream.pointee.avail_out = UInt32(buffer.count)
                    let status = inflate(stream, Z_NO_FLUSH)
                    return (status, buffer.count - Int(stream.pointee.avail_out))
                }
                output.append(contentsOf: chunk[0..<produced])
                if output.count > limit { return nil }
                if status == Z_STREAM_END { return output }
                guard status == Z_OK, produced > 0 || stream.pointee.avail_in > 0 else { return nil }
            }
        }
    }
}
