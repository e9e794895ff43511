import Foundation
import RegularFiles

/// A picture a user names (an init image, a training image): PNG or JPEG, told apart by its bytes, not its name, as
/// diffusers' `load_image` (PIL's `Image.open`) does.
public enum ImageFile {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// PNG or JPEG bytes decoded to RGB; anything else is "not a PNG or JPEG file". `upright`: turned by its EXIF
    /// orientation (ExifOrientation), as `ImageOps.exif_transpose` does.
    public static func decode(_ bytes: [UInt8], name: String, upright: Bool = false) throws(Error) -> RGBImage {
        if PNGFile.isPNG(bytes) {
            do { return try PNGFile.decode(bytes, name: name, upright: upright).image } catch { throw Error(description: error.description) }
        }
        // SOI then the first marker: every JFIF, EXIF and raw JPEG starts so.
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            do { return try JPEGFile.decode(bytes, name: name, upright: upright) } catch { throw Error(description: error.description) }
        }
        throw Error(description: "\(name): not a PNG or JPEG file")
    }

    /// A regular file of at most `PNGFile.sizeLimit` bytes (a FIFO, device or folder is refused, never opened), decoded.
    public static func read(_ path: String, upright: Bool = false) throws(Error) -> RGBImage {
        let bytes: [UInt8]
        do { bytes = try RegularFile.contents(path, limit: PNGFile.sizeLimit, what: "PNG or JPEG file") } catch {
            throw Error(description: error.description)
        }
        return try decode(bytes, name: path, upright: upright)
    }
}
