import Foundation
import ImageIO
import ImageMetadata
import RegularFiles
import SD3

/// The folder of finished images, owned by this type: names are `NNNNN-SEED-first-prompt-words.png`,
/// numbered after the highest number already there, never overwriting.
public struct OutputFolder: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public static func defaultPath(environment: [String: String]) -> String {
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

    /// Writes the PNG with the same text chunks as `sd3 generate`; returns its number and path. The name is taken
    /// atomically (PNGFile.writeNew): two studios saving into one folder at once get two numbers and two files.
    public func save(_ image: RGBImage, metadata: ImageMetadata) throws(StoreError) -> (number: Int, path: String) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            // Another save (a thread, another studio) may have made it between Foundation's check and its mkdir.
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
                throw StoreError("\(path): cannot create the output folder (\(error.localizedDescription))")
            }
        }
        let bytes: [UInt8]
        do { bytes = try PNGFile.encode(image, text: metadata.pngText) } catch { throw StoreError(error.description) }
        // Numbers are taken under an flock on the folder, so two savers (threads or studios) never share one even
        // with different seeds in the name; the link in writeNew alone guarantees no file is ever replaced, also
        // where flock is not supported.
        let lock = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer {
            if lock >= 0 { close(lock) }
        }
        let first = lastNumber() + 1
        let written: (index: Int, path: String)?
        do {
            written = try PNGFile.writeNew(bytes, tries: 10_000) { path + "/" + Self.fileName(number: first + $0, seed: metadata.seed, prompt: metadata.prompt) }
        } catch {
            throw StoreError(error.description)
        }
        guard let written else { throw StoreError("\(path): no free file name from number \(first) on") }
        return (first + written.index, written.path)
    }

    /// What deleting a history entry may do to its file. The studio deletes only what it wrote: a regular file
    /// (not a link, folder or device) named like its outputs (`NNNNN-….png`) directly in this folder, with
    /// symbolic links and `..` resolved on both sides. Anything else (a file `sd3 generate` wrote elsewhere, a
    /// path a favorites import recorded) leaves the disk alone and only the entry goes.
    public enum Deletion: Sendable, Equatable {
        /// The file to delete, its path resolved.
        case file(String)
        /// Only the entry goes; why the file stays.
        case entryOnly(reason: String)
    }

    public func deletion(of file: String) -> Deletion {
        var info = stat()
        guard lstat(file, &info) == 0 else { return .entryOnly(reason: "its file \(file) is already gone") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            let kind = info.st_mode & S_IFMT == S_IFLNK ? "a symbolic link" : RegularFile.kind(info.st_mode) ?? "not a regular file"
            return .entryOnly(reason: "\(file) is \(kind), kept")
        }
        guard let resolved = Self.resolve(file), let folder = Self.resolve(path),
              (resolved as NSString).deletingLastPathComponent == folder else {
            return .entryOnly(reason: "\(file) is not in the outputs folder \(path), kept")
        }
        let name = (resolved as NSString).lastPathComponent
        let digits = name.prefix { $0.isASCII && $0.isNumber }
        guard name.hasSuffix(".png"), digits.count >= 5, name.dropFirst(digits.count).first == "-" else {
            return .entryOnly(reason: "\(file) is not named like the studio's images, kept")
        }
        return .file(resolved)
    }

    /// Deletes the file if `deletion(of:)` still allows it (it is checked again here, at the moment of deleting).
    /// unlink never follows a link and never removes a folder. Returns what became of the file, to follow
    /// "Deleted #N " in the status line.
    public func delete(_ file: String) -> String {
        switch deletion(of: file) {
        case let .entryOnly(reason):
            return "from the list only (\(reason))"
        case let .file(resolved):
            guard unlink(resolved) == 0 else { return "from the list; \(resolved) could not be deleted: \(String(cString: strerror(errno)))" }
            return "and its file \((resolved as NSString).lastPathComponent)"
        }
    }

    /// realpath(3): absolute, with links, `.` and `..` resolved; nil when the path does not resolve.
    static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
