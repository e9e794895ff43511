import Foundation
import ImageIO

/// Which tool wrote a PNG's text chunks and what they say: one reader per format, each a pure function of the chunks,
/// tried most exact first (our JSON, then formats named by their own chunk, then A1111's shared `parameters` text).
public enum MetadataReader {
    /// One text chunk; `latin1` for tEXt and zTXt, whose bytes are Latin-1 by the PNG spec (each byte one scalar).
    struct Chunk {
        var key: String
        var value: String
        var latin1: Bool
    }

    /// Reads `path`; a missing file, a non-PNG, or a PNG with no parameters we can read is a one-line error.
    public static func read(_ path: String) throws(MetadataError) -> RecalledParameters {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw MetadataError("\(path): no such file") }
        guard !isFolder.boolValue else { throw MetadataError("\(path): is a folder, not a PNG file") }
        let chunks: [PNGFile.TextChunk]
        do { chunks = try PNGFile.readTextChunks(path) } catch { throw MetadataError(error.description) }
        return try parse(chunks.map { Chunk(key: $0.key, value: $0.value, latin1: $0.latin1) }, name: path)
    }

    /// A PNG file's bytes (the text chunks only; no pixels decoded).
    public static func parse(png bytes: [UInt8], name: String) throws(MetadataError) -> RecalledParameters {
        guard PNGFile.isPNG(bytes) else { throw MetadataError("\(name): not a PNG file") }
        return try parse(PNGFile.textChunkList(bytes).map { Chunk(key: $0.key, value: $0.value, latin1: $0.latin1) }, name: name)
    }

    /// Key and value pairs as `PNGFile.encode` would write them (tEXt when the value is Latin-1, else iTXt).
    public static func parse(_ pairs: [(key: String, value: String)], name: String) throws(MetadataError) -> RecalledParameters {
        try parse(pairs.map { Chunk(key: $0.key, value: $0.value, latin1: $0.value.unicodeScalars.allSatisfy { $0.value <= 0xFF }) }, name: name)
    }

    /// Our own record from a PNG's `sd3-studio` chunk, for `--params-from`; nil when it has none.
    public static func ownMetadata(_ text: [(key: String, value: String)], name: String) throws(MetadataError) -> ImageMetadata? {
        guard let json = text.first(where: { $0.key == "sd3-studio" })?.value else { return nil }
        return try OwnReader.parse(json, name: name)
    }

    /// The chunks' keys for a one-line message: at most 20, each at most 79 characters (PNG's keyword limit), anything
    /// but printable text shown as `?`.
    static func keyList(_ keys: [String]) -> String {
        guard !keys.isEmpty else { return "none" }
        let shown = keys.prefix(20).map { key in
            String(String.UnicodeScalarView(key.unicodeScalars.prefix(79).map { $0.properties.generalCategory == .control || $0.properties.isWhitespace && $0 != " " ? "?" : $0 }))
        }
        return shown.joined(separator: ", ") + (keys.count > 20 ? " and \(keys.count - 20) more" : "")
    }

    static func parse(_ chunks: [Chunk], name: String) throws(MetadataError) -> RecalledParameters {
        func chunk(_ key: String) -> Chunk? { chunks.first { $0.key == key } }
        var p: RecalledParameters
        var used: Set<String>
        if let c = chunk("sd3-studio") {
            (p, used) = (RecalledParameters(try OwnReader.parse(c.value, name: name)), ["sd3-studio", "parameters"])
        } else if let c = chunk("invokeai_metadata") {
            (p, used) = (try InvokeAIReader.parse(c.value, name: name), ["invokeai_metadata", "invokeai_graph", "invokeai_workflow"])
        } else if let c = chunk("sd-metadata") {
            (p, used) = (try InvokeAILegacyReader.parse(c.value, name: name), ["sd-metadata", "Dream"])
        } else if let c = chunk("Dream") {
            (p, used) = (try InvokeAILegacyReader.parse(dream: c.value, name: name), ["Dream"])
        } else if let json = chunk("parameters").flatMap({ JSONValue.parse($0.value) }), json.object != nil {
            // Fooocus and SwarmUI put a JSON object in A1111's chunk; that is never A1111 text (whose prompt may start
            // with `{`, as dynamic prompts' `{red|blue}` does, and is read below).
            if json["sui_image_params"] != nil {
                (p, used) = (try SwarmUIReader.parse(json, name: name), ["parameters"])
            } else if chunk("fooocus_scheme") != nil || json["full_prompt"] != nil || json["base_model"] != nil {
                (p, used) = (try FooocusReader.parse(json, name: name), ["parameters", "fooocus_scheme"])
            } else {
                throw MetadataError("\(name): no generation parameters I can read (its parameters chunk is JSON of a tool I do not know)")
            }
        } else if let c = chunk("sui_image_params") {
            (p, used) = (try SwarmUIReader.parse(c.value, name: name), ["sui_image_params"])
        } else if let c = chunk("prompt") {
            (p, used) = (try ComfyUIPromptReader.parse(c.value, name: name), ["prompt", "workflow"])
        } else if let c = chunk("workflow") {
            (p, used) = (try ComfyUIWorkflowReader.parse(c.value, name: name), ["workflow"])
        } else if chunk("Software")?.value == "NovelAI", let c = chunk("Comment") {
            (p, used) = (try NovelAIReader.parse(comment: c.value, description: chunk("Description")?.value, source: chunk("Source")?.value, name: name),
                         ["Comment", "Description", "Source", "Software", "Title", "Generation time"])
        } else if DrawThingsReader.claims(software: chunk("Software")?.value, comment: chunk("Comment")?.value) {
            (p, used) = (try DrawThingsReader.parse(comment: chunk("Comment")?.value, description: chunk("Description")?.value, name: name),
                         ["Comment", "Description", "Software"])
        } else if let c = chunk("parameters") {
            (p, used) = (try A1111Reader.parse(c.value, latin1: c.latin1, name: name), ["parameters"])
        } else {
            throw MetadataError("\(name): no generation parameters I can read (chunks: \(keyList(chunks.map(\.key))))")
        }
        // Another tool's parameters beside the ones read: said, not merged.
        for key in ["sd3-studio", "invokeai_metadata", "sd-metadata", "prompt", "parameters", "sui_image_params"] where !used.contains(key) && chunk(key) != nil {
            p.warnings.append("this PNG also has a \(key) chunk (another tool's parameters), not read")
        }
        return p
    }
}
