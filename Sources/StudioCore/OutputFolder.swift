import Foundation
import ImageIO
import SD3

/// The folder of finished images, owned by this type: names are `NNNNN-SEED-first-prompt-words.png`,
/// numbered after the highest number already there, never overwriting.
public struct OutputFolder: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        StudioStore.dataFolder(environment: environment) + "/outputs"
    }

    /// Up to five words of the prompt, lower-cased, letters and digits only, joined by dashes.
    public static func slug(_ prompt: String) -> String {
        let words = prompt.lowercased().split { !($0.isLetter || $0.isNumber) }.prefix(5)
        let slug = words.joined(separator: "-")
        return slug.isEmpty ? "untitled" : String(slug.prefix(60))
    }

    public static func fileName(number: Int, seed: UInt64, prompt: String) -> String {
        String(format: "%05d", number) + "-\(seed)-\(slug(prompt)).png"
    }

    /// The highest NNNNN among the folder's files.
    public func lastNumber() -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.compactMap { name in
            let digits = name.prefix { $0.isASCII && $0.isNumber }
            return digits.count == 5 ? Int(digits) : nil
        }.max() ?? 0
    }

    /// Writes the PNG with the same text chunks as `sd3 generate`; returns its number and path.
    public func save(_ image: RGBImage, metadata: ImageMetadata) throws(StoreError) -> (number: Int, path: String) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StoreError("\(path): cannot create the output folder (\(error.localizedDescription))")
        }
        var number = lastNumber() + 1
        var file = path + "/" + Self.fileName(number: number, seed: metadata.seed, prompt: metadata.prompt)
        while FileManager.default.fileExists(atPath: file) {
            number += 1
            file = path + "/" + Self.fileName(number: number, seed: metadata.seed, prompt: metadata.prompt)
        }
        do {
            try PNGFile.write(image, text: metadata.pngText, to: file)
        } catch {
            throw StoreError(error.description)
        }
        return (number, file)
    }
}
