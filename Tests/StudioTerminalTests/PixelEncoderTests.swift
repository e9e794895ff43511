import Foundation
import ImageIO
import StudioCore
import StudioTerminal
import Testing

/// libchafa's sixel and kitty output for a small known image, and the fitting of images into the pane.
@Suite struct PixelEncoderTests {
    /// 4×4: left half red, right half blue.
    static let image = RGBImage(width: 4, height: 4, pixels: (0..<16).flatMap { i in i % 4 < 2 ? [UInt8(255), 0, 0] : [0, 0, 255] })

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func sixelIsOneDCSWithRasterAttributesForTheRequestedSize() throws {
        let bytes = PixelEncoder.encode(Self.image, mode: .sixel, columns: 3, rows: 2, cell: CellSize(width: 10, height: 20))
        let text = Self.text(bytes)
        #expect(text.hasPrefix("\u{1B}P"), "starts \(text.prefix(20).debugDescription)")
        #expect(text.hasSuffix("\u{1B}\\"), "ends \(text.suffix(20).debugDescription)")
        // DCS P1;P2;P3 q, then raster attributes "Pan;Pad;Ph;Pv: 30 pixels wide, 40 rounded down to sixel bands of 6.
        let q = try #require(text.firstIndex(of: "q"))
        #expect(text[text.index(text.startIndex, offsetBy: 2)..<q].allSatisfy { $0.isNumber || $0 == ";" })
        let raster = text[text.index(after: q)...].prefix { $0 != "#" }
        #expect(raster == "\"1;1;30;36", "raster \(raster.debugDescription)")
        // Exactly one string terminator, at the end: the sequence is a single image.
        #expect(text.components(separatedBy: "\u{1B}\\").count == 2)
    }

    @Test func sixelPaletteHasTheImagesColours() {
        let text = Self.text(PixelEncoder.encode(Self.image, mode: .sixel, columns: 3, rows: 2, cell: CellSize(width: 10, height: 20)))
        // Colour definitions are #index;2;R;G;B in percent.
        #expect(text.contains(";2;100;0;0"), "no red in \(text.debugDescription)")
        #expect(text.contains(";2;0;0;100"), "no blue in \(text.debugDescription)")
    }

    @Test func kittyUsesChunksOfAtMost4096WithContinuationFlags() throws {
        let cell = CellSize(width: 10, height: 20)
        let text = Self.text(PixelEncoder.encode(Self.image, mode: .kitty, columns: 8, rows: 4, cell: cell))
        let chunks = text.components(separatedBy: "\u{1B}\\").dropLast()
        #expect(text.hasSuffix("\u{1B}\\"))
        #expect(chunks.count >= 3, "80×80 RGBA is 25,600 bytes, more than one chunk; got \(chunks.count)")
        var payload = "", pieces: [Data] = []
        for (i, chunk) in chunks.enumerated() {
            #expect(chunk.hasPrefix("\u{1B}_G"), "chunk \(i): \(chunk.prefix(30).debugDescription)")
            let body = chunk.dropFirst(3)
            let control = body.prefix { $0 != ";" }
            let data = body.contains(";") ? body[body.index(after: body.firstIndex(of: ";")!)...] : ""
            #expect(data.utf8.count <= 4096, "chunk \(i) has \(data.utf8.count) bytes of base64")
            let last = i == chunks.count - 1
            #expect(control.split(separator: ",").contains(last ? "m=0" : "m=1"), "chunk \(i) control \(control)")
            payload += data
            pieces.append(Data(base64Encoded: String(data)) ?? Data())
        }
        let first = try #require(chunks.first)
        for key in ["a=T", "s=80", "v=80", "c=8", "r=4"] {
            #expect(first.dropFirst(3).prefix { $0 != ";" }.split(separator: ",").contains(Substring(key)), "\(key) missing in \(first.prefix(60))")
        }
        // The chunks carry 80×80 pixels in the format named by f= (32: RGBA, 24: RGB); the top-left one is red.
        let format = first.dropFirst(3).prefix { $0 != ";" }.split(separator: ",").first { $0.hasPrefix("f=") }
        let bytesPerPixel = format == "f=32" ? 4 : 3
        let pixels = Data(base64Encoded: payload) ?? pieces.reduce(Data(), +)
        #expect(pixels.count == 80 * 80 * bytesPerPixel, "\(pixels.count) bytes, format \(format ?? "none")")
        #expect(Array(pixels.prefix(3)) == [255, 0, 0], "first pixel \(Array(pixels.prefix(4)))")
    }

    @Test func textModesEncodeNothing() {
        #expect(PixelEncoder.encode(Self.image, mode: .symbols, columns: 3, rows: 2, cell: .fallback).isEmpty)
    }

    @Test func fitKeepsTheAspectRatioInPixelsAndCentres() {
        let area = Rect(x: 40, y: 2, width: 40, height: 20)
        // A square image in 10×20 cells: 20 rows are 400 px, so 40 columns; the height limits.
        #expect(PixelEncoder.fit(width: 1024, height: 1024, into: area, cell: CellSize(width: 10, height: 20))
                == Rect(x: 40, y: 2, width: 40, height: 20))
        // 8×16 cells: 20 rows are 320 px; 40 columns are 320 px too.
        #expect(PixelEncoder.fit(width: 512, height: 512, into: area, cell: CellSize(width: 8, height: 16))
                == Rect(x: 40, y: 2, width: 40, height: 20))
        // A wide image (2:1) in 10×20 cells: width limits to 400 px, height 200 px = 10 rows, centred vertically.
        #expect(PixelEncoder.fit(width: 1024, height: 512, into: area, cell: CellSize(width: 10, height: 20))
                == Rect(x: 40, y: 7, width: 40, height: 10))
        // A tall image (1:2): height 400 px, width 200 px = 20 columns, centred horizontally.
        #expect(PixelEncoder.fit(width: 512, height: 1024, into: area, cell: CellSize(width: 10, height: 20))
                == Rect(x: 50, y: 2, width: 20, height: 20))
    }

    @Test func cellSizeFromWinsize() {
        #expect(CellSize(windowColumns: 120, rows: 36, pixelWidth: 720, pixelHeight: 468) == CellSize(width: 6, height: 13))
        #expect(CellSize(windowColumns: 80, rows: 24, pixelWidth: 0, pixelHeight: 0) == CellSize(width: 10, height: 20))
    }
}
