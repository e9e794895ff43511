import CJPEG
import Foundation

/// JPEG decoding through libjpeg-turbo (ComfyUI sends its step previews as JPEG), behind a C wrapper that turns
/// libjpeg's longjmp errors into a return code (Sources/CJPEG/shim.h).
public enum JPEGFile {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// The most pixels decoded: a preview is small; a hostile header must not make us allocate gigabytes.
    public static let pixelLimit = 1 << 26

    /// Decodes a baseline or progressive JPEG (grey, RGB or YCbCr; CMYK is refused by name) to RGB.
    /// `upright`: turned by its EXIF orientation as Pillow's `ImageOps.exif_transpose` does (ExifOrientation);
    /// otherwise the pixels as stored. A file that ends inside its image data is an error, as Pillow's "image file is
    /// truncated", unless `partial` (a preview: libjpeg fills the rest with grey).
    public static func decode(_ bytes: [UInt8], name: String = "JPEG", upright: Bool = false, partial: Bool = false) throws(Error) -> RGBImage {
        guard bytes.count > 3, bytes[0] == 0xFF, bytes[1] == 0xD8 else { throw Error(description: "\(name): not a JPEG image") }
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0, truncated: Int32 = 0
        var message = [CChar](repeating: 0, count: 200)
        let status = bytes.withUnsafeBufferPointer { buffer in
            sd3_jpeg_decode(buffer.baseAddress, UInt(buffer.count), UInt(pixelLimit), &pixels, &width, &height, &truncated, &message)
        }
        guard status == 0, let pixels, width > 0, height > 0 else {
            if truncated != 0 { throw Error(description: "\(name): truncated JPEG (the file ends early)") }
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw Error(description: "\(name): \(text.isEmpty ? "cannot be decoded" : text)")
        }
        defer { free(pixels) }
        if truncated != 0, !partial { throw Error(description: "\(name): truncated JPEG (the file ends inside its image data)") }
        let count = Int(width) * Int(height) * 3
        let image = RGBImage(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
        return upright ? ExifOrientation.upright(image, orientation: ExifOrientation.ofJPEG(bytes)) : image
    }
}
