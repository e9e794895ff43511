/// The EXIF Orientation tag (TIFF tag 0x0112: 1 upright … 8) of a JPEG or PNG, found where Pillow finds it for
/// `ImageOps.exif_transpose` (PIL/Image.py `getexif`, PIL/JpegImagePlugin.py `APP`, PIL/PngImagePlugin.py `chunk_eXIf`)
/// and parsed as PIL/TiffImagePlugin.py `ImageFileDirectory_v2.load` does, with every read bounds-checked: a damaged
/// block gives nil (Pillow would raise on some of them). Big-TIFF EXIF ("II+") is not read.
public enum ExifOrientation {
    /// The orientation of a JPEG: its APP1 "Exif\0\0" segments (joined, as Pillow joins them), else a
    /// `tiff:Orientation` in its XMP segment. nil when none is found or the value is not 1…8.
    public static func ofJPEG(_ bytes: [UInt8]) -> Int? {
        var exif: [UInt8]?, xmp: ArraySlice<UInt8>?
        let xmpPrefix = Array("http://ns.adobe.com/xap/1.0/\0".utf8)
        var i = 2
        // Markers up to the scan (JPEG T.81 B.1.1.2): FF, fill FFs, the code, then a 2-byte length that counts itself.
        // Stray bytes between segments are stepped over, as Pillow's reader does.
        while i + 1 < bytes.count {
            guard bytes[i] == 0xFF else { i += 1; continue }
            let code = bytes[i + 1]
            if code == 0xFF { i += 1; continue }
            if code == 0x00 || code == 0x01 || code == 0xD8 || (0xD0...0xD7).contains(code) { i += 2; continue }
            if code == 0xDA || code == 0xD9 || i + 3 >= bytes.count { break }
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2, i + 2 + length <= bytes.count else { break }
            let segment = bytes[(i + 4)..<(i + 2 + length)]
            if code == 0xE1, segment.starts(with: exifPrefix) {
                if exif == nil { exif = Array(segment) } else { exif! += segment.dropFirst(6) }
            } else if code == 0xE1, segment.starts(with: xmpPrefix) {
                xmp = segment.dropFirst(xmpPrefix.count)
            }
            i += 2 + length
        }
        return orientation(exif: exif, xmp: xmp)
    }

    /// The orientation of a PNG: its last eXIf chunk (or tEXt "exif", whichever comes last, as in Pillow's info
    /// dictionary), else ImageMagick's hex "Raw profile type exif" text, else XMP's `tiff:Orientation`.
    public static func ofPNG(_ bytes: [UInt8]) -> Int? {
        guard PNGFile.isPNG(bytes) else { return nil }
        return ofPNG(bytes, text: PNGFile.textChunkList(bytes))
    }

    /// The same, with the PNG's text chunks already read (`PNGFile.textChunkList`).
    static func ofPNG(_ bytes: [UInt8], text: [PNGFile.TextChunk]) -> Int? {
        var exif: [UInt8]?
        PNGFile.forEachChunk(bytes) { type, data in
            if type.elementsEqual("eXIf".utf8) {
                exif = exifPrefix + data
            } else if type.elementsEqual("tEXt".utf8), data.starts(with: Array("exif".utf8)), data.count == 4 || data[data.startIndex + 4] == 0 {
                exif = Array(data.dropFirst(5))
            }
        }
        if exif == nil, let raw = text.last(where: { $0.key == "Raw profile type exif" }) {
            // "\nexif\n  LENGTH\nHEX…": the hex digits after the third new line (PIL/Image.py getexif).
            exif = hexBytes(raw.value.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(3).joined())
        }
        let xmp = text.last(where: { $0.key == "XML:com.adobe.xmp" }).map { Array($0.value.utf8)[...] }
        return orientation(exif: exif, xmp: xmp)
    }

    static let exifPrefix = Array("Exif\0\0".utf8)

    /// EXIF's tag when it is there (whatever its value), else XMP's (getexif consults XMP only for a missing tag).
    static func orientation(exif: [UInt8]?, xmp: ArraySlice<UInt8>?) -> Int? {
        let value: Int?
        if let exif, case let .present(tagged) = tag(exif[...]) {
            value = tagged
        } else {
            value = xmp.flatMap(xmpOrientation)
        }
        return value.flatMap { (1...8).contains($0) ? $0 : nil }
    }

    enum Tag: Equatable { case absent, present(Int?) }

    /// IFD0's Orientation in an EXIF block ("Exif\0\0" at most twice, then a TIFF header and IFD0). Entries are read
    /// in order until one is cut off or its out-of-line data is; an entry of an unknown type or no values is skipped,
    /// as is one whose out-of-line data would bring the total past the block's size, and the first stored one for a
    /// tag wins (TiffImagePlugin `load`). The value is the first of the entry's values when it is a whole number
    /// (Pillow's dictionary lookup takes 6, 6.0 or 12/2 alike); BYTE, ASCII and UNDEFINED values are bytes or text
    /// there, so never a rotation.
    static func tag(_ block: ArraySlice<UInt8>) -> Tag {
        var data = block
        for _ in 0..<2 where data.starts(with: exifPrefix) { data = data.dropFirst(6) }
        let tiff = Array(data)
        guard tiff.count >= 8 else { return .absent }
        let little: Bool
        if tiff[0..<4].elementsEqual([0x49, 0x49, 0x2A, 0x00]) { little = true }
        else if tiff[0..<4].elementsEqual([0x4D, 0x4D, 0x00, 0x2A]) { little = false }
        else { return .absent }
        func unsigned(_ at: Int, _ size: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<size { v |= UInt64(tiff[at + k]) << (8 * (little ? k : size - 1 - k)) }
            return v
        }
        let ifd = Int(unsigned(4, 4))
        guard ifd <= tiff.count - 2 else { return .absent }
        var stored = Set<Int>(), outOfLine = 0
        for index in 0..<Int(unsigned(ifd, 2)) {
            let entry = ifd + 2 + 12 * index
            guard entry <= tiff.count - 12 else { break }
            let tag = Int(unsigned(entry, 2)), type = Int(unsigned(entry + 2, 2)), count = Int(unsigned(entry + 4, 4))
            guard !stored.contains(tag), let unit = unitSize[type] else { continue }
            let size = count * unit
            var at = entry + 8
            if size > 4 {
                outOfLine += size
                at = Int(unsigned(entry + 8, 4))
                guard outOfLine <= tiff.count else { continue }
                // A short read of the data ends the IFD (ImageFile._safe_read raises; load stops at the OSError).
                guard at <= tiff.count - size else { break }
            }
            guard size > 0 else { continue }
            stored.insert(tag)
            if tag == 0x0112 { return .present(wholeNumber(type: type, at: at, unsigned)) }
        }
        return .absent
    }

    /// Bytes per value of each TIFF type Pillow reads (TiffImagePlugin `_load_dispatch`; TIFF 6.0 §2, Big-TIFF 8/16).
    static let unitSize: [Int: Int] = [1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8]

    /// The first value at `at` as a whole number, nil for a fraction, NaN or a byte/text type.
    static func wholeNumber(type: Int, at: Int, _ unsigned: (Int, Int) -> UInt64) -> Int? {
        func whole(_ value: Double) -> Int? { value.isFinite && value.rounded() == value && abs(value) < 1e9 ? Int(value) : nil }
        switch type {
        case 3, 4, 13: return Int(unsigned(at, type == 3 ? 2 : 4))
        case 16: return whole(Double(unsigned(at, 8)))
        case 6: return Int(Int8(truncatingIfNeeded: unsigned(at, 1)))
        case 8: return Int(Int16(truncatingIfNeeded: unsigned(at, 2)))
        case 9: return Int(Int32(truncatingIfNeeded: unsigned(at, 4)))
        case 5: let (n, d) = (unsigned(at, 4), unsigned(at + 4, 4)); return d == 0 ? nil : whole(Double(n) / Double(d))
        case 10:
            let (n, d) = (Int32(truncatingIfNeeded: unsigned(at, 4)), Int32(truncatingIfNeeded: unsigned(at + 4, 4)))
            return d == 0 ? nil : whole(Double(n) / Double(d))
        case 11: return whole(Double(Float(bitPattern: UInt32(unsigned(at, 4)))))
        case 12: return whole(Double(bitPattern: unsigned(at, 8)))
        default: return nil
        }
    }

    /// The digit of the first `tiff:Orientation="D` or `tiff:Orientation>D` (PIL/Image.py getexif's pattern).
    static func xmpOrientation(_ xmp: ArraySlice<UInt8>) -> Int? {
        let name = Array("tiff:Orientation".utf8)
        let text = Array(xmp)
        var i = 0
        while i + name.count < text.count {
            if text[i..<(i + name.count)].elementsEqual(name) {
                let j = i + name.count
                let digit = text[j] == UInt8(ascii: ">") ? j + 1
                    : text[j] == UInt8(ascii: "=") && j + 1 < text.count && text[j + 1] == UInt8(ascii: "\"") ? j + 2 : text.count
                if digit < text.count, (0x30...0x39).contains(text[digit]) { return Int(text[digit] - 0x30) }
            }
            i += 1
        }
        return nil
    }

    /// Hex digit pairs to bytes, white space between pairs skipped (Python's bytes.fromhex); nil for anything else.
    static func hexBytes(_ text: String) -> [UInt8]? {
        var out: [UInt8] = [], high: UInt8?
        for c in text.utf8 {
            if c == 0x20 || (0x09...0x0D).contains(c) {
                guard high == nil else { return nil }
                continue
            }
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c - 0x30
            case 0x41...0x46: digit = c - 0x41 + 10
            case 0x61...0x66: digit = c - 0x61 + 10
            default: return nil
            }
            if let h = high { out.append(h << 4 | digit); high = nil } else { high = digit }
        }
        return high == nil ? out : nil
    }

    /// `image` turned upright for `orientation` as Pillow's `exif_transpose` does: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180,
    /// 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270 (a quarter turn clockwise), 7 TRANSVERSE, 8 ROTATE_90; 5–8 swap
    /// width and height. Anything else returns the image as it is.
    public static func upright(_ image: RGBImage, orientation: Int?) -> RGBImage {
        guard let orientation, (2...8).contains(orientation) else { return image }
        let (w, h) = (image.width, image.height)
        let (outW, outH) = orientation >= 5 ? (h, w) : (w, h)
        // The source pixel of output pixel (x, y).
        let source: (Int, Int) -> (Int, Int)
        switch orientation {
        case 2: source = { x, y in (w - 1 - x, y) }
        case 3: source = { x, y in (w - 1 - x, h - 1 - y) }
        case 4: source = { x, y in (x, h - 1 - y) }
        case 5: source = { x, y in (y, x) }
        case 6: source = { x, y in (y, h - 1 - x) }
        case 7: source = { x, y in (w - 1 - y, h - 1 - x) }
        default: source = { x, y in (w - 1 - y, x) }
        }
        var pixels = [UInt8](repeating: 0, count: image.pixels.count)
        for y in 0..<outH {
            for x in 0..<outW {
                let (sx, sy) = source(x, y)
                let (o, s) = ((y * outW + x) * 3, (sy * w + sx) * 3)
                (pixels[o], pixels[o + 1], pixels[o + 2]) = (image.pixels[s], image.pixels[s + 1], image.pixels[s + 2])
            }
        }
        return RGBImage(width: outW, height: outH, pixels: pixels)
    }
}
