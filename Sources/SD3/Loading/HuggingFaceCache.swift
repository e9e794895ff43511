import Foundation
import HubCacheNames
import RegularFiles
import SafeTensors

/// The local Hugging Face hub cache, read the way huggingface_hub writes it (never downloading):
/// `models--ORG--NAME/refs/main` holds a commit hash, `snapshots/<hash>/…` the files (symlinks into `blobs/`).
public struct HuggingFaceCache: Sendable, Equatable {
    /// Cache folders in the order huggingface_hub consults them: `$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`.
    public let roots: [String]

    public init(roots: [String]) { self.roots = roots }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        var roots: [String] = []
        if let hub = environment["HF_HUB_CACHE"], !hub.isEmpty { roots.append(hub) }
        if let home = environment["HF_HOME"], !home.isEmpty { roots.append(home + "/hub") }
        let user = environment["HOME"] ?? NSHomeDirectory()
        let xdg = environment["XDG_CACHE_HOME"].map { $0 + "/huggingface/hub" }
        roots.append(xdg ?? user + "/.cache/huggingface/hub")
        self.roots = roots
    }

    /// "ORG/NAME": two plain segments, as the hub names repos.
    public static func isRepoID(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && !part.hasPrefix(".") && part.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
        }
    }

    /// The snapshot folder of `repo` at `revision` (a branch under refs/, or a commit hash), or nil when absent.
    public func snapshot(repo: String, revision: String = "main") -> String? {
        for root in roots {
            let base = root + "/" + HubCacheNames.folder(repo: repo)
            var commit = revision
            if let bytes = try? Data(RegularFile.contents(HubCacheNames.ref(base, revision), limit: 4096)), let ref = String(data: bytes, encoding: .utf8) {
                commit = ref.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let snapshot = HubCacheNames.snapshot(base, commit)
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: snapshot, isDirectory: &isFolder), isFolder.boolValue { return snapshot }
        }
        return nil
    }

    /// Every cached model repo with a `main` snapshot: (repo id, snapshot folder).
    public func repos() -> [(id: String, snapshot: String)] {
        var found: [(String, String)] = []
        var seen = Set<String>()
        for root in roots {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            for entry in entries.sorted() {
                guard let id = HubCacheNames.repo(folder: entry), !seen.contains(id), let snapshot = snapshot(repo: id) else { continue }
                seen.insert(id)
                found.append((id, snapshot))
            }
        }
        return found
    }
}
