import Foundation

/// Our `sd3-studio` chunk: `ImageMetadata` as JSON (written by `ImageMetadata.json`).
enum OwnReader {
    static func parse(_ text: String, name: String) throws(MetadataError) -> ImageMetadata {
        guard let m = ImageMetadata(json: text) else {
            throw MetadataError("\(name): its sd3-studio chunk is not valid sd3-studio JSON")
        }
        return m
    }
}
