import Foundation
import HubCacheNames

/// One repo's folder in the hub cache, written the way huggingface_hub writes it
/// (file_download.py, `hf_hub_download` and `_create_symlink`):
/// `blobs/<etag>`, `snapshots/<commit>/<path>` as relative links into `../../blobs`, `refs/<revision>` holding the commit.
public struct CacheLayout: Sendable {
    public let folder: String

    public init(root: String, repo: String) {
        folder = root + "/" + HubCacheNames.folder(repo: repo)
    }

    public func blob(_ name: String) -> String { HubCacheNames.blob(folder, name) }
    public func incomplete(_ name: String) -> String { blob(name) + ".incomplete" }
    public func snapshot(_ commit: String) -> String { HubCacheNames.snapshot(folder, commit) }

    /// Links `snapshots/<commit>/<path>` to its blob with a relative target, so the cache can move.
    /// Only a link is ever replaced: whatever else sits at the path (a folder, a file) is an error, never removed.
    func link(_ file: RepoFile, commit: String) throws {
        let path = snapshot(commit) + "/" + file.path
        guard HubNames.isSafeFile(file.path), HubNames.isHex(commit, count: 40),
              HubNames.isHex(file.blobName, count: 40) || HubNames.isHex(file.blobName, count: 64) else {
            throw HubError.cacheWrite(path: HubNames.shown(path), reason: "not a name inside the snapshot")
        }
        let depth = HubNames.components(file.path).count - 1
        let target = HubCacheNames.blobLink(file.blobName, depth: depth)
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                if existing == target { return }
                try FileManager.default.removeItem(atPath: path)
            } else if (try? FileManager.default.attributesOfItem(atPath: path)) != nil {
                throw HubError.cacheWrite(path: path, reason: "something other than a link is in the way")
            }
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
        } catch let error as HubError {
            throw error
        } catch {
            throw HubError.cacheWrite(path: path, reason: "\(error)")
        }
    }

    /// `refs/<revision>` names the commit; a revision that is itself a commit needs no ref (as in huggingface_hub).
    func writeRef(_ revision: String, commit: String) throws {
        guard revision != commit else { return }
        guard HubNames.isRevision(revision) else { throw HubError.badRevision(revision) }
        let path = HubCacheNames.ref(folder, revision)
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(commit.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw HubError.cacheWrite(path: path, reason: "\(error)")
        }
    }

    func makeFolders() throws {
        do { try FileManager.default.createDirectory(atPath: HubCacheNames.blobs(folder), withIntermediateDirectories: true) } catch {
            throw HubError.cacheWrite(path: folder, reason: "\(error)")
        }
    }
}
