import Foundation
import ImageMetadata
import Testing
@testable import SD3

/// Where LoRA files are found: listed from the LoRA folders by their keys (models beside them are not LoRAs, LoRAs are
/// not models), resolved from what the user typed, and a recorded LoRA found again by path, then by name and hash.
@Suite struct LoraCatalogTests {
    static let style = LoraTests.folder + "/style.kohya.safetensors"
    static let detail = LoraTests.folder + "/detail.diffusers.safetensors"

    static func folder() throws -> String {
        let root = NSTemporaryDirectory() + "lora-catalog-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/sd3-studio/models/loras", withIntermediateDirectories: true)
        return root
    }

    @Test func scanListsLorasOnlyAndTheModelListSkipsThem() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let models = root + "/sd3-studio/models"
        try FileManager.default.copyItem(atPath: Self.style, toPath: models + "/loras/style.safetensors")
        try FileManager.default.copyItem(atPath: Self.detail, toPath: models + "/detail.safetensors")
        try FileManager.default.copyItem(atPath: Self.style, toPath: models + "/style.safetensors")  // the same name again: the first folder wins
        try FileManager.default.copyItem(atPath: SingleFileTests.files + "/sd3.safetensors", toPath: models + "/sd3.safetensors")
        try "not safetensors".write(toFile: models + "/loras/broken.safetensors", atomically: true, encoding: .utf8)
        let folders = LoraCatalog.folders(environment: ["XDG_DATA_HOME": root, "HOME": "/h"])
        #expect(folders == [models + "/loras", models])
        #expect(LoraCatalog.scan(folders: folders) == [.init(name: "style", path: models + "/loras/style.safetensors"),
                                                       .init(name: "detail", path: models + "/detail.safetensors")])
        let entries = ModelCatalog.scan(configured: [], folders: [models], cache: HuggingFaceCache(roots: [root + "/hub"]))
        #expect(entries.map(\.model) == [models + "/sd3.safetensors"], "LoRA files are not offered as models")
    }

    @Test func resolveTakesPathsAndNames() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folders = [root + "/sd3-studio/models/loras", root + "/sd3-studio/models"]
        try FileManager.default.copyItem(atPath: Self.style, toPath: root + "/sd3-studio/models/loras/style.safetensors")
        #expect(LoraCatalog.resolve(Self.detail, folders: folders) == Self.detail)
        #expect(LoraCatalog.resolve("style", folders: folders) == root + "/sd3-studio/models/loras/style.safetensors")
        #expect(LoraCatalog.resolve("style.safetensors", folders: folders) == root + "/sd3-studio/models/loras/style.safetensors")
        #expect(LoraCatalog.resolve("nope", folders: folders) == nil)
        #expect(LoraCatalog.resolve(root + "/sd3-studio/models", folders: folders) == nil, "a folder is not a LoRA file")
        #expect(LoraCatalog.resolve("models/loras/style", folders: [root + "/sd3-studio"]) == nil, "names with a slash are paths only")
    }

    @Test func locateByPathThenNameAndHash() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folders = [root + "/sd3-studio/models/loras", root + "/sd3-studio/models"]
        let hash = LoraFile.shortHash(path: Self.style)
        let read = try LoraFile(path: Self.style)
        #expect(hash.count == 12 && hash == read.shortHash)
        let record = ImageMetadata.LoraRecord(name: "style", strength: 0.5, hash: hash, path: Self.style)
        #expect(LoraCatalog.locate(record, folders: folders) == .init(record: record, path: Self.style, hashMatches: true))
        // Moved away: not found, until it is put in a LoRA folder under its name.
        var moved = record
        moved.path = root + "/gone/style.safetensors"
        #expect(LoraCatalog.locate(moved, folders: folders) == .init(record: moved, path: nil, hashMatches: false))
        try FileManager.default.copyItem(atPath: Self.detail, toPath: root + "/sd3-studio/models/loras/style.safetensors")
        #expect(LoraCatalog.locate(moved, folders: folders) == .init(record: moved, path: root + "/sd3-studio/models/loras/style.safetensors", hashMatches: false),
                "another file with the name: found, its hash differs")
        try FileManager.default.copyItem(atPath: Self.style, toPath: root + "/sd3-studio/models/style.safetensors")
        #expect(LoraCatalog.locate(moved, folders: folders) == .init(record: moved, path: root + "/sd3-studio/models/style.safetensors", hashMatches: true),
                "the file with the recorded hash wins over the first with the name")
    }
}
