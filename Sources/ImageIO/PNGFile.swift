import CPNG
import Foundation
import Inflate
import RegularFiles

/// PNG encoding and decoding through libpng's simplified API (no setjmp), with text chunks spliced in and
/// read out by walking the chunk list ourselves (PNG 1.2 spec §4: length, type, data, CRC-32).
public enum PNGFile {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// PNG bytes for `image` with `text` as tEXt chunks (Latin-1 values) or iTXt chunks (anything else), in order.
    public static func encode(_ image: RGBImage, text: [(key: String, value: String)] = []) throws(Error) -> [UInt8] {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_RGB)
        var size = 0
        let stride = Int32(image.width * 3)
        guard image.pixels.withUnsafeBytes({ png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, stride, nil) }) != 0 else {
            throw Error(description: "libpng: \(message(&png))")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        let ok = bytes.withUnsafeMutableBytes { out in
            image.pixels.withUnsafeBytes { png_image_write_to_memory(&png, out.baseAddress, &size, 0, $0.baseAddress, stride, nil) }
        }
        guard ok != 0 else { throw Error(description: "libpng: \(message(&png))") }
        bytes.removeLast(bytes.count - size)
        // Text chunks go right after IHDR (8-byte signature + 25-byte IHDR chunk).
        var chunks: [UInt8] = []
        for (key, value) in text { chunks += textChunk(key: key, value: value) }
        bytes.insert(contentsOf: chunks, at: 33)
        return bytes
    }

    /// Decodes any 8-bit PNG to RGB, dropping alpha as Pillow's `convert("RGB")` does, and returns its text chunks
    /// (tEXt, zTXt and iTXt, compressed or not: `textChunks`). `upright`: turned by its EXIF orientation (eXIf chunk)
    /// as Pillow's `ImageOps.exif_transpose` does (ExifOrientation); otherwise the pixels as stored.
    public static func decode(_ bytes: [UInt8], name: String = "PNG", upright: Bool = false) throws(Error) -> (image: RGBImage, text: [(key: String, value: String)]) {
        guard bytes.count > 8, bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            throw Error(description: "\(name): not a PNG file")
        }
        let pixelChunks = try pixelChunks(bytes, name: name)
        // libpng keeps the pointer from begin_read and reads through it again in finish_read, so the bytes live in
        // memory of our own until both are done (a pointer out of `withUnsafeBytes` dangled once the optimiser
        // released the array early: release builds read freed memory and reported "IDAT: CRC error").
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, pixelChunks.count), alignment: 1)
        defer { memory.deallocate() }
        pixelChunks.withUnsafeBytes { memory.copyMemory(from: $0) }
        // The png_image lives at one address for both calls too: libpng keeps a pointer to it (its io and error
        // pointers), and `&png` on a Swift variable is only promised for the length of one call.
        let png = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        png.initialize(to: png_image())
        defer { png.deinitialize(count: 1); png.deallocate() }
        png.pointee.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(png, memory.baseAddress, pixelChunks.count) != 0 else {
            throw Error(description: "\(name): \(message(png))")
        }
        png.pointee.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)  // PNG_FORMAT_RGBA
        let (width, height) = (Int(png.pointee.width), Int(png.pointee.height))
        guard width > 0, height > 0, width * height <= 1 << 26 else {
            png_image_free(png)
            throw Error(description: "\(name): unsupported size \(width)×\(height)")
        }
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let ok = rgba.withUnsafeMutableBytes { png_image_finish_read(png, nil, $0.baseAddress, Int32(width * 4), nil) }
        guard ok != 0 else { throw Error(description: "\(name): \(message(png))") }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<width * height {
            pixels[3 * i] = rgba[4 * i]
            pixels[3 * i + 1] = rgba[4 * i + 1]
            pixels[3 * i + 2] = rgba[4 * i + 2]
        }
        let image = RGBImage(width: width, height: height, pixels: pixels)
        // The text is inflated once, for the orientation and the caller.
        let text = textChunkList(bytes)
        let shown = upright ? ExifOrientation.upright(image, orientation: ExifOrientation.ofPNG(bytes, text: text)) : image
        return (shown, text.map { ($0.key, $0.value) })
    }

    /// The largest PNG file read (a 8192×8192 RGBA image stored raw is 256 MiB).
    public static let sizeLimit = 256 << 20

    /// Reads a regular file of at most `sizeLimit` bytes (a FIFO, device or folder is refused, never opened);
    /// `upright` as in `decode`.
    public static func read(_ path: String, upright: Bool = false) throws(Error) -> (image: RGBImage, text: [(key: String, value: String)]) {
        let bytes: [UInt8]
        do { bytes = try RegularFile.contents(path, limit: sizeLimit, what: "PNG file") } catch { throw Error(description: error.description) }
        return try decode(bytes, name: path, upright: upright)
    }

    /// Only the text chunks of a PNG file (no pixels decoded), with the same checks as `read`.
    public static func readText(_ path: String) throws(Error) -> [(key: String, value: String)] {
        let bytes: [UInt8]
        do { bytes = try RegularFile.contents(path, limit: sizeLimit, what: "PNG file") } catch { throw Error(description: error.description) }
        guard bytes.count > 8, bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            throw Error(description: "\(path): not a PNG file")
        }
        return textChunks(bytes)
    }

    /// Writes atomically: a temporary file in the same folder, renamed over the target (which it replaces).
    public static func write(_ image: RGBImage, text: [(key: String, value: String)] = [], to path: String) throws(Error) {
        let temporary = try writeTemporary(encode(image, text: text), for: path)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw Error(description: "\(path): cannot write: \(reason)")
        }
    }

    /// Writes a new file at `path`, never replacing anything there: the complete temporary file is hard-linked
    /// to the name (link() fails with EEXIST when the name is taken, atomically, so two writers can never both get
    /// it). Returns false when the name is taken.
    public static func writeNew(_ image: RGBImage, text: [(key: String, value: String)] = [], to path: String) throws(Error) -> Bool {
        try writeNew(encode(image, text: text), tries: 1) { _ in path } != nil
    }

    /// Writes a new file at the first free name of `name(0)`, `name(1)`, … (`tries` of them, all in one folder),
    /// never replacing anything: returns the index and the path taken, or nil when all were taken. The bytes are
    /// written once, to a temporary file linked to each name in turn. Where the file system has no hard links,
    /// the name is reserved with an O_EXCL create and the temporary file renamed over that empty reservation.
    public static func writeNew(_ bytes: [UInt8], tries: Int, name: (Int) -> String) throws(Error) -> (index: Int, path: String)? {
        var temporary: String?
        defer { if let temporary { unlink(temporary) } }
        for index in 0..<tries {
            let path = name(index)
            if temporary == nil { temporary = try writeTemporary(bytes, for: path) }
            guard let source = temporary else { break }
            if link(source, path) == 0 { return (index, path) }
            let code = errno
            if code == EEXIST { continue }
            guard code == EPERM || code == EOPNOTSUPP || code == EXDEV || code == EMLINK else {
                throw Error(description: "\(path): cannot write: \(String(cString: strerror(code)))")
            }
            let reserved = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if reserved < 0, errno == EEXIST { continue }
            guard reserved >= 0 else { throw Error(description: "\(path): cannot write: \(String(cString: strerror(errno)))") }
            close(reserved)
            guard rename(source, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(path)
                throw Error(description: "\(path): cannot write: \(reason)")
            }
            temporary = nil
            return (index, path)
        }
        return nil
    }

    /// `.NAME.PID-RANDOM.partial` beside `path`, created with O_EXCL (two threads of one process never share
    /// one) and filled; the caller renames or links it, then it is gone. Returns its path.
    static func writeTemporary(_ bytes: [UInt8], for path: String) throws(Error) -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var fd: Int32 = -1
        var temporary = ""
        for _ in 0..<100 where fd < 0 {
            let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
            temporary = folder + "/." + url.lastPathComponent + ".\(getpid())-\(suffix).partial"
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0, errno != EEXIST { break }
        }
        guard fd >= 0 else { throw Error(description: "\(path): cannot write: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { writeBytes(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw Error(description: "\(path): cannot write: \(reason)")
            }
            written += n
        }
        return temporary
    }

    /// The file without its text chunks (read by `textChunks`, so libpng need not inflate a zTXt bomb), after
    /// checking every chunk's length against the bytes left: libpng would allocate a declared length of up to
    /// 2 GiB before finding the data missing.
    static func pixelChunks(_ bytes: [UInt8], name: String) throws(Error) -> [UInt8] {
        var kept = Array(bytes.prefix(8))
        kept.reserveCapacity(bytes.count)
        var offset = 8
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw Error(description: "\(name): truncated chunk at byte \(offset)") }
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length <= bytes.count - offset - 12 else {
                throw Error(description: "\(name): a chunk at byte \(offset) declares \(length) bytes, more than the file has left")
            }
            let type = bytes[offset + 4..<offset + 8]
            let end = offset + 12 + length
            if !(type.elementsEqual("tEXt".utf8) || type.elementsEqual("zTXt".utf8) || type.elementsEqual("iTXt".utf8)) {
                kept += bytes[offset..<end]
            }
            offset = end
            if type.elementsEqual("IEND".utf8) { break }
        }
        return kept
    }

    private static func message(_ png: UnsafeMutablePointer<png_image>) -> String {
        withUnsafeBytes(of: &png.pointee.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func textChunk(key: String, value: String) -> [UInt8] {
        let keyword = Array(key.unicodeScalars.filter { $0.value >= 32 && $0.value <= 255 }.prefix(79).map { UInt8($0.value) })
        let latin1 = value.unicodeScalars.allSatisfy { $0.value <= 255 && ($0.value >= 32 || $0 == "\n") }
        if latin1 {
            return chunk("tEXt", keyword + [0] + value.unicodeScalars.map { UInt8($0.value) })
        }
        // iTXt: keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, UTF-8 text.
        return chunk("iTXt", keyword + [0, 0, 0, 0, 0] + Array(value.utf8))
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt32(data.count).bigEndian) { out += $0 }
        let body = Array(type.utf8) + data
        out += body
        withUnsafeBytes(of: crc32(body).bigEndian) { out += $0 }
        return out
    }

    /// The most a compressed text chunk may inflate to.
    static let textLimit = 16 << 20

    /// One text chunk: `latin1` for tEXt and zTXt, whose bytes are Latin-1 by the PNG spec (each byte one scalar,
    /// so the bytes as written can be had back); iTXt is UTF-8.
    public struct TextChunk: Sendable, Equatable {
        public var key: String
        public var value: String
        public var latin1: Bool
        public init(key: String, value: String, latin1: Bool) { (self.key, self.value, self.latin1) = (key, value, latin1) }
    }

    /// Whether `bytes` start with the PNG signature.
    public static func isPNG(_ bytes: [UInt8]) -> Bool {
        bytes.count > 8 && bytes.prefix(8).elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }

    /// Only the text chunks of a PNG file (no pixels decoded), with the same checks as `read`.
    public static func readTextChunks(_ path: String) throws(Error) -> [TextChunk] {
        let bytes: [UInt8]
        do { bytes = try RegularFile.contents(path, limit: sizeLimit, what: "PNG file") } catch { throw Error(description: error.description) }
        guard isPNG(bytes) else { throw Error(description: "\(path): not a PNG file") }
        return textChunkList(bytes)
    }

    static func textChunks(_ bytes: [UInt8]) -> [(key: String, value: String)] { textChunkList(bytes).map { ($0.key, $0.value) } }

    /// tEXt, zTXt and iTXt (compressed or not), before or after the image data; damaged compressed text is skipped.
    public static func textChunkList(_ bytes: [UInt8]) -> [TextChunk] {
        var result: [TextChunk] = []
        forEachChunk(bytes) { typeBytes, data in
            let type = String(decoding: typeBytes, as: UTF8.self)
            if type == "tEXt", let nul = data.firstIndex(of: 0) {
                let key = String(decoding: data[..<nul], as: UTF8.self)
                result.append(TextChunk(key: key, value: latin1(data[(nul + 1)...]), latin1: true))
            } else if type == "zTXt", let nul = data.firstIndex(of: 0), nul + 1 < data.endIndex, data[nul + 1] == 0,
                      let text = Inflate.decompress(Array(data[(nul + 2)...]), format: .zlib, limit: textLimit) {
                // keyword, NUL, method 0 (deflate), then the Latin-1 text compressed (PNG 1.2 §4.2.3.2).
                let key = String(decoding: data[..<nul], as: UTF8.self)
                result.append(TextChunk(key: key, value: latin1(text[...]), latin1: true))
            } else if type == "iTXt", let nul = data.firstIndex(of: 0), nul + 2 < data.endIndex, data[nul + 1] <= 1, data[nul + 2] == 0,
                      let value = internationalText(data[(nul + 3)...], compressed: data[nul + 1] == 1) {
                // keyword, NUL, compressed flag, method, language, NUL, translated keyword, NUL, UTF-8 text (§4.2.3.3).
                result.append(TextChunk(key: String(decoding: data[..<nul], as: UTF8.self), value: value, latin1: false))
            }
        }
        return result
    }

    /// Each chunk's type and data, in place (slices: their indices are the file's), after the signature, up to IEND
    /// or the first length that runs past the end; CRCs are not checked (the readers of metadata take what is there).
    static func forEachChunk(_ bytes: [UInt8], _ body: (_ type: ArraySlice<UInt8>, _ data: ArraySlice<UInt8>) -> Void) {
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length <= bytes.count - offset - 12 else { break }
            let type = bytes[(offset + 4)..<(offset + 8)]
            body(type, bytes[(offset + 8)..<(offset + 8 + length)])
            if type.elementsEqual("IEND".utf8) { break }
            offset += 12 + length
        }
    }

    /// Latin-1 bytes as text, each byte one scalar (U+0000…U+00FF).
    static func latin1(_ bytes: ArraySlice<UInt8>) -> String {
        String(bytes: bytes, encoding: .isoLatin1) ?? String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// An iTXt chunk's text after its flags: language tag, NUL, translated keyword, NUL, then the UTF-8 text
    /// (zlib-compressed when `compressed`); nil when a NUL is missing or the stream is damaged.
    static func internationalText(_ rest: ArraySlice<UInt8>, compressed: Bool) -> String? {
        guard let language = rest.firstIndex(of: 0) else { return nil }
        let afterLanguage = rest[(language + 1)...]
        guard let translated = afterLanguage.firstIndex(of: 0) else { return nil }
        let body = Array(afterLanguage[(translated + 1)...])
        guard compressed else { return String(decoding: body, as: UTF8.self) }
        return Inflate.decompress(body, format: .zlib, limit: textLimit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// CRC-32 (ISO 3309, polynomial 0xEDB88320) as PNG uses it.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}

/// POSIX write(2), out of PNGFile, whose own `write` hides it.
private func writeBytes(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, pointer, count) }
