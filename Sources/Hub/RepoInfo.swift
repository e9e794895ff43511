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

    /// The largest file a listing may name (the hub's largest LFS files are ~50 GB); it also keeps every sum of sizes
    /// far from Int64's end.
    static let maxFileSize: Int64 = 1 << 40

    /// Only the fields a pull needs; a field of another type than these is a decoding error, never a trap.
    private struct Listing: Decodable {
        struct LFS: Decodable { var sha256: String?; var size: Int64? }
        struct Sibling: Decodable { var rfilename: String?; var size: Int64?; var blobId: String?; var lfs: LFS? }
        var sha: String?
        var siblings: [Sibling]?
    }

    /// Parses the hub's model info JSON (`sha`, `siblings`). Every name that becomes a path is checked here: file names
    /// (HubNames.isSafeFile), the commit and blob names (ASCII hex), sizes (0...1 TiB), and that the files fit one
    /// folder tree: no path listed twice, none both a file and a folder, no blob listed with two sizes.
    public init(repo: String, json: Data) throws {
        let listing: Listing
        do { listing = try JSONDecoder().decode(Listing.self, from: json) } catch {
            throw HubError.badMetadata(repo: repo, reason: "not the model info JSON (\(Self.summary(error)))")
        }
        guard let commit = listing.sha, HubNames.isHex(commit, count: 40) else {
            throw HubError.badMetadata(repo: repo, reason: "no commit hash in 'sha'")
        }
        guard let siblings = listing.siblings else { throw HubError.badMetadata(repo: repo, reason: "no 'siblings' list") }
        var files: [RepoFile] = []
        var paths = Set<String>(), folders = Set<String>(), blobSizes: [String: Int64] = [:]
        for sibling in siblings {
            guard let path = sibling.rfilename else { throw HubError.badMetadata(repo: repo, reason: "a sibling without 'rfilename'") }
            guard HubNames.isSafeFile(path) else { throw HubError.badMetadata(repo: repo, reason: "unsafe file name \(HubNames.shown(path))") }
            let shown = HubNames.shown(path)
            guard let size = sibling.lfs?.size ?? sibling.size, let blobID = sibling.blobId else {
                throw HubError.badMetadata(repo: repo, reason: "\(shown) has no size or blobId (was ?blobs=true asked?)")
            }
            guard (0...Self.maxFileSize).contains(size) else { throw HubError.badMetadata(repo: repo, reason: "\(shown) has a size of \(size) bytes") }
            let sha256 = sibling.lfs?.sha256
            if let sha256, !HubNames.isHex(sha256, count: 64) { throw HubError.badMetadata(repo: repo, reason: "\(shown) has a bad sha256") }
            guard HubNames.isHex(blobID, count: 40) else { throw HubError.badMetadata(repo: repo, reason: "\(shown) has a bad blobId") }
            let file = RepoFile(path: path, size: size, blobID: blobID.lowercased(), sha256: sha256?.lowercased())
            guard paths.insert(path).inserted else { throw HubError.badMetadata(repo: repo, reason: "\(shown) is listed twice") }
            let components = HubNames.components(path).map { String(decoding: $0, as: UTF8.self) }
            for depth in 1..<components.count { folders.insert(components[..<depth].joined(separator: "/")) }
            if let listed = blobSizes.updateValue(size, forKey: file.blobName), listed != size {
                throw HubError.badMetadata(repo: repo, reason: "\(shown) shares its blob with a file of another size")
            }
            files.append(file)
        }
        if let clash = paths.intersection(folders).sorted().first {
            throw HubError.badMetadata(repo: repo, reason: "\(HubNames.shown(clash)) is listed both as a file and as a folder")
        }
        self.repo = repo
        self.commit = commit.lowercased()
        self.files = files
    }

    /// A decoding error in a few words, without the input it came from.
    private static func summary(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "unreadable" }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "not a JSON object" : "bad value at \(HubNames.shown(path))"
        @unknown default:
            return "unreadable"
        }
    }
}
