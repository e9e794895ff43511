import Foundation

/// The Hugging Face cache's folder names, in one place for its writer (`Hub.CacheLayout`, `sd3 models pull`) and its
/// reader (`SD3.HuggingFaceCache`), as huggingface_hub spells them (file_download.py `repo_folder_name`):
/// `models--ORG--NAME/` holding `blobs/<etag>`, `snapshots/<commit>/<path>` and `refs/<revision>`.
public enum HubCacheNames {
    static let prefix = "models--"

    /// "org/name" → "models--org--name".
    public static func folder(repo: String) -> String { prefix + repo.replacingOccurrences(of: "/", with: "--") }

    /// "models--org--name" → "org/name"; nil for a folder that is not a model repo's.
    public static func repo(folder: String) -> String? {
        guard folder.hasPrefix(prefix) else { return nil }
        return folder.dropFirst(prefix.count).replacingOccurrences(of: "--", with: "/")
    }

    public static func blobs(_ repoFolder: String) -> String { repoFolder + "/blobs" }
    public static func blob(_ repoFolder: String, _ name: String) -> String { blobs(repoFolder) + "/" + name }

    /// A snapshot file's link to its blob, relative so the cache can move: up through the file's `depth` folders inside
    /// the snapshot, the commit's folder and `snapshots/`, then into `blobs/` (file_download.py `_create_symlink`).
    public static func blobLink(_ name: String, depth: Int) -> String { String(repeating: "../", count: depth + 2) + "blobs/" + name }
    public static func snapshot(_ repoFolder: String, _ commit: String) -> String { repoFolder + "/snapshots/" + commit }
    public static func ref(_ repoFolder: String, _ revision: String) -> String { repoFolder + "/refs/" + revision }
}
