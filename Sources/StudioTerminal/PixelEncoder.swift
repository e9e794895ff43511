import CChafa
import ImageIO
import StudioCore

/// Images as sixel or kitty escape sequences, encoded (and, for sixel, dithered to a palette) by libchafa.
public enum PixelEncoder {
    /// The cells an image occupies when fitted into `area` keeping its aspect ratio (cells are `cell` pixels),
    /// centred. At least one cell.
    public static func fit(width: Int, height: Int, into area: Rect, cell: CellSize) -> Rect {
        let areaWidth = Double(area.width * cell.width), areaHeight = Double(area.height * cell.height)
        let scale = min(areaWidth / Double(width), areaHeight / Double(height))
        let columns = min(area.width, max(1, Int(Double(width) * scale / Double(cell.width))))
        let rows = min(area.height, max(1, Int(Double(height) * scale / Double(cell.height))))
        return Rect(x: area.x + (area.width - columns) / 2, y: area.y + (area.height - rows) / 2, width: columns, height: rows)
    }

    /// The escape sequence that draws `image` stretched over `columns`×`rows` cells of `cell` pixels, starting at
    /// the cursor. Sixel: one DCS `ESC P … q … ESC \` whose raster attributes give the pixel size (chafa rounds the
    /// height down to whole sixel bands of 6). Kitty: `a=T` transmit-and-display in `ESC _G … ESC \` chunks.
    public static func encode(_ image: RGBImage, mode: GraphicsMode, columns: Int, rows: Int, cell: CellSize) -> [UInt8] {
        let pixelMode: ChafaPixelMode
        switch mode {
        case .sixel: pixelMode = CHAFA_PIXEL_MODE_SIXELS
        case .kitty: pixelMode = CHAFA_PIXEL_MODE_KITTY
        default: return []
        }
        guard columns > 0, rows > 0 else { return [] }
        let config = chafa_canvas_config_new()
        defer { chafa_canvas_config_unref(config) }
        chafa_canvas_config_set_pixel_mode(config, pixelMode)
        chafa_canvas_config_set_canvas_mode(config, CHAFA_CANVAS_MODE_TRUECOLOR)
        chafa_canvas_config_set_geometry(config, Int32(columns), Int32(rows))
        chafa_canvas_config_set_cell_geometry(config, Int32(cell.width), Int32(cell.height))
        guard let canvas = chafa_canvas_new(config) else { return [] }
        defer { chafa_canvas_unref(canvas) }
        image.pixels.withUnsafeBufferPointer { pixels in
            chafa_canvas_draw_all_pixels(canvas, CHAFA_PIXEL_RGB8, pixels.baseAddress,
                                         Int32(image.width), Int32(image.height), Int32(image.width * 3))
        }
        // The fallback terminal info has every sequence chafa knows; we chose the protocol ourselves.
        guard let termInfo = chafa_term_db_get_fallback_info(chafa_term_db_get_default()) else { return [] }
        defer { chafa_term_info_unref(termInfo) }
        guard let printed = chafa_canvas_print(canvas, termInfo) else { return [] }
        defer { g_string_free(printed, 1) }
        let length = Int(printed.pointee.len)
        return printed.pointee.str.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }
}
