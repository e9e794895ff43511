import CPNG
import Foundation

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
    /// (tEXt, iTXt; zTXt and compressed iTXt are skipped).
    public static func decode(_ bytes: [UInt8], name: String = "PNG") throws(Error) -> (image: RGBImage, text: [(key: String, value: String)]) {
        guard bytes.count > 8, bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            throw Error(description: "\(name): not a PNG file")
        }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        guard bytes.withUnsafeBytes({ png_image_begin_read_from_memory(&png, $0.baseAddress, $0.count) }) != 0 else {
            throw Error(description: "\(name): \(message(&png))")
        }
        png.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)  // PNG_FORMAT_RGBA
        let (width, height) = (Int(png.width), Int(png.height))
        guard width > 0, height > 0, width * height <= 1 << 28 else {
            png_image_free(&png)
            throw Error(description: "\(name): unsupported size \(width)×\(height)")
        }
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let ok = rgba.withUnsafeMutableBytes { png_image_finish_read(&png, nil, $0.baseAddress, Int32(width * 4), nil) }
        guard ok != 0 else { throw Error(description: "\(name): \(message(&png))") }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<width * height {
            pixels[3 * i] = rgba[4 * i]
            pixels[3 * i + 1] = rgba[4 * i + 1]
            pixels[3 * i + 2] = rgba[4 * i + 2]
        }
        return (RGBImage(width: width, height: height, pixels: pixels), textChunks(bytes))
    }

    public static func read(_ path: String) throws(Error) -> (image: RGBImage, text: [(key: String, value: String)]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw Error(description: "\(path): cannot read the file") }
        return try decode([UInt8](data), name: path)
    }

    /// Writes atomically: a temporary file in the same folder, renamed over the target.
    public static func write(_ image: RGBImage, text: [(key: String, value: String)] = [], to path: String) throws(Error) {
        let bytes = try encode(image, text: text)
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).partial")
        do {
            try Data(bytes).write(to: temporary)
            guard rename(temporary.path, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw Error(description: "\(path): cannot write: \(error.localizedDescription)")
        }
    }

    private static func message(_ png: inout png_image) -> String {
        withUnsafeBytes(of: &png.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
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

    static func textChunks(_ bytes: [UInt8]) -> [(key: String, value: String)] {
        var result: [(key: String, value: String)] = []
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length <= bytes.count - offset - 12 else { break }
            let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
            let data = Array(bytes[offset + 8..<offset + 8 + length])
            if type == "tEXt", let nul = data.firstIndex(of: 0) {
                let key = String(decoding: data[..<nul].map { $0 }, as: UTF8.self)
                let value = String(String.UnicodeScalarView(data[(nul + 1)...].map { Unicode.Scalar($0) }))
                result.append((key, value))
            } else if type == "iTXt", let nul = data.firstIndex(of: 0), nul + 2 < data.count, data[nul + 1] == 0 {
                let key = String(decoding: data[..<nul], as: UTF8.self)
                var rest = data[(nul + 3)...]
                guard let language = rest.firstIndex(of: 0) else { break }
                rest = rest[(language + 1)...]
                guard let translated = rest.firstIndex(of: 0) else { break }
                result.append((key, String(decoding: rest[(translated + 1)...], as: UTF8.self)))
            }
            if type == "IEND" { break }
            offset += 12 + length
        }
        return result
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
