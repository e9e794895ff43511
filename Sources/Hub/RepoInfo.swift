import Foundation

/// One file of a repo as `GET /api/models/{repo}/revision/{rev}?blobs=true` lists it.
/// The blob name in the cache is the LFS sha256 for LFS files and the git blob id otherwise,
/// matching the ETag huggingface_hub keys its blobs by (file_download.py, `_normalize_etag`).
public struct RepoFile: Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var blobID: String
    public var sha256: String?

    public var blobName: String { sha256 ?? blobID }
}

/// The commit a revision points to and its files.
public struct RepoInfo: Sendable {
    public var repo: String
    public var commit: String
    public var files: [RepoFile]

    /// Parses the hub's model info JSON (only the fields a pull needs: `sha`, `siblings`).
    public init(repo: String, json: Data) throws {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw HubError.badMetadata(repo: repo, reason: "not a JSON object")
        }
        guard let commit = object["sha"] as? String, Self.isCommit(commit) else {
            throw HubError.badMetadata(repo: repo, reason: "no commit hash in 'sha'")
        }
        guard let siblings = object["siblings"] as? [[String: Any]] else {
            throw HubError.badMetadata(repo: repo, reason: "no 'siblings' list")
        }
        var files: [RepoFile] = []
        for sibling in siblings {
            guard let path = sibling["rfilename"] as? String, Self.isSafe(path) else {
                throw HubError.badMetadata(repo: repo, reason: "a sibling without a usable 'rfilename'")
            }
            let lfs = sibling["lfs"] as? [String: Any]
            let size = (lfs?["size"] as? NSNumber)?.int64Value ?? (sibling["size"] as? NSNumber)?.int64Value
            guard let size, let blobID = sibling["blobId"] as? String else {
                throw HubError.badMetadata(repo: repo, reason: "\(path) has no size or blobId (was ?blobs=true asked?)")
            }
            let sha256 = lfs?["sha256"] as? String
            if let sha256, !Self.isHex(sha256, count: 64) { throw HubError.badMetadata(repo: repo, reason: "\(path) has a bad sha256") }
            guard Self.isHex(blobID, count: 40) else { throw HubError.badMetadata(repo: repo, reason: "\(path) has a bad blobId") }
            files.append(RepoFile(path: path, size: size, blobID: blobID, sha256: sha256))
        }
        self.repo = repo
        self.commit = commit
        self.files = files
    }

    static func isCommit(_ text: String) -> Bool { isHex(text, count: 40) }

    static func isHex(_ text: String, count: Int) -> Bool {
        text.count == count && text.allSatisfy { $0.isHexDigit }
    }

    /// A relative path that stays inside the snapshot folder (the names come from the network).
    static func isSafe(_ path: String) -> Bool {
        !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == ".." || $0.isEmpty || $0 == "." }
    }
}
