import Checksums
import Foundation
import Testing
@testable import Hub

/// What sits around a repo's cache folder, for checking that a hostile pull touched nothing of it: a file beside the
/// cache root, another repo's snapshot, and another snapshot, ref and blob of the pulled repo itself.
struct Neighbours {
    static let otherCommit = "fedcba9876543210fedcba9876543210fedcba98"
    let root: String
    let cache: String
    let repo: String
    private var before: [String: String] = [:]

    init(repo: String) throws {
        root = PullTests.temporaryRoot()
        cache = root + "/hub"
        self.repo = repo
        let own = CacheLayout(root: cache, repo: repo)
        let other = CacheLayout(root: cache, repo: "someone/else")
        for layout in [own, other] {
            let blob = String(repeating: "ab", count: 32)
            try write(layout.blob(blob), "weights of \(layout.folder)")
            try write(layout.folder + "/refs/stable", Self.otherCommit)
            for path in ["model_index.json", "vae/config.json"] {
                let link = layout.snapshot(Self.otherCommit) + "/" + path
                try FileManager.default.createDirectory(atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: String(repeating: "../", count: path.split(separator: "/").count + 1) + "blobs/" + blob)
            }
        }
        try write(root + "/victim.txt", "not the hub's")
        try write(root + "/hub/version.txt", "1")
        before = try tree()
    }

    private func write(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Every entry under the root but the pulled commit's own places (its blobs, its snapshot, refs/main), as
    /// relative path → "link target" / "file hash" / "folder".
    func tree() throws -> [String: String] {
        let own = CacheLayout(root: cache, repo: repo)
        let mine = [own.folder + "/blobs/", own.snapshot(FakeHub.commit), own.folder + "/refs/main"]
        var entries: [String: String] = [:]
        guard let walk = FileManager.default.enumerator(atPath: root) else { throw CocoaError(.fileReadNoSuchFile) }
        for case let relative as String in walk {
            let path = root + "/" + relative
            if mine.contains(where: { path.hasPrefix($0) }) && !path.hasSuffix("/blobs/" + String(repeating: "ab", count: 32)) { continue }
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                entries[relative] = "link " + target
            } else if let data = FileManager.default.contents(atPath: path) {
                entries[relative] = "file " + SHA256.hex(data)
            } else {
                entries[relative] = "folder"
            }
        }
        return entries
    }

    func expectIntact(_ label: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let after = try tree()
        let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
        #expect(changed.isEmpty, "\(label): touched \(changed)", sourceLocation: sourceLocation)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}
