import Checksums
import Foundation

/// What to pull: huggingface_hub's `snapshot_download(repo_id, revision, allow_patterns)` plus the seed's T5 lever.
public struct PullOptions: Sendable {
    public var revision = "main"
    /// fnmatch patterns as huggingface_hub's `allow_patterns` (a trailing "/" means the whole folder); empty: every file.
    public var include: [String] = []
    /// Skips `text_encoder_3/` and `tokenizer_3/` (T5: 9.5 GB of SD3 Medium).
    public var skipT5 = false
    public var parallel = 4

    public init() {}

    func wants(_ path: String) -> Bool {
        if skipT5, path.hasPrefix("text_encoder_3/") || path.hasPrefix("tokenizer_3/") { return false }
        if include.isEmpty { return true }
        return include.contains { pattern in
            let full = pattern.hasSuffix("/") ? pattern + "*" : pattern
            return fnmatch(full, path, 0) == 0
        }
    }
}

/// The files a pull will have in the snapshot, and how many bytes are still to come.
public struct PullPlan: Sendable {
    public enum State: Sendable, Equatable { case cached, partial(Int64), missing }
    public var info: RepoInfo
    public var files: [(file: RepoFile, state: State)]

    /// Each blob counted once: files with the same content share it (RepoInfo has checked they list one size).
    public var totalBytes: Int64 { unique.reduce(0) { $0 + $1.file.size } }
    public var bytesToFetch: Int64 {
        unique.reduce(0) { sum, entry in
            switch entry.state {
            case .cached: return sum
            case .partial(let have): return sum + entry.file.size - have
            case .missing: return sum + entry.file.size
            }
        }
    }

    private var unique: [(file: RepoFile, state: State)] {
        var seen = Set<String>()
        return files.filter { seen.insert($0.file.blobName).inserted }
    }

    /// Refuses to start a pull that cannot fit, before any byte is written.
    public func checkSpace(free: Int64?, folder: String) throws {
        if let free, free < bytesToFetch { throw HubError.diskFull(needed: bytesToFetch, free: free, folder: folder) }
    }
}

/// `sd3 models pull`: model info, then each wanted file into `blobs/` (resumed, verified), then the snapshot links and the ref.
public struct ModelPull: Sendable {
    public let repo: String
    public let options: PullOptions
    public let layout: CacheLayout
    let http: HubHTTP

    public init(repo: String, options: PullOptions, settings: HubSettings, cacheRoot: String) {
        self.repo = repo
        self.options = options
        self.layout = CacheLayout(root: cacheRoot, repo: repo)
        self.http = HubHTTP(settings: settings, repo: repo)
    }

    /// The settings, repo id and revision are checked before any request: the revision becomes `refs/<revision>`.
    public func plan() async throws -> PullPlan {
        try checkNames()
        let revision = options.revision.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? options.revision
        let url = try makeURL("/api/models/\(repo)/revision/\(revision)?blobs=true")
        let info = try RepoInfo(repo: repo, json: try await http.getData(url, revision: options.revision))
        let files = info.files.filter { options.wants($0.path) }.map { file -> (RepoFile, PullPlan.State) in
            if Self.size(of: layout.blob(file.blobName)) == file.size { return (file, .cached) }
            if let have = Self.size(of: layout.incomplete(file.blobName)), have <= file.size { return (file, .partial(have)) }
            return (file, .missing)
        }
        return PullPlan(info: info, files: files)
    }

    func checkNames() throws {
        try http.settings.check()
        guard HubNames.isRepoID(repo) else { throw HubError.badRepo(repo) }
        guard HubNames.isRevision(options.revision) else { throw HubError.badRevision(options.revision) }
        guard (1...64).contains(options.parallel) else {
            throw HubError.badSetting(name: "--parallel", value: "\(options.parallel)", expected: "1 to 64 files at once")
        }
    }

    /// Downloads what the plan lacks, `parallel` files at a time; returns the snapshot folder.
    /// Every file is tried even when one fails, so a rerun has less left to do; the first error is thrown.
    /// Cancelling the calling task stops the transfers (CancellationError); the bytes fetched so far stay for a rerun.
    public func run(_ plan: PullPlan, progress: PullProgress) async throws -> String {
        try checkNames()
        try layout.makeFolders()
        try plan.checkSpace(free: DiskSpace.free(at: layout.folder), folder: layout.folder)
        // Files with the same content share one blob (huggingface_hub keys blobs by ETag): fetch each blob once.
        let waiting = plan.files.filter { $0.state != .cached }.map(\.file)
        let sharing = Dictionary(waiting.map { ($0.blobName, 1) }, uniquingKeysWith: +)
        var seen = Set<String>()
        var pending = waiting.filter { seen.insert($0.blobName).inserted }[...]
        var firstError: Error?
        try await withThrowingTaskGroup(of: Result<Void, Error>.self) { group in
            func startNext() {
                guard !Task.isCancelled, let file = pending.popFirst() else { return }
                group.addTask {
                    do {
                        try await fetch(file, commit: plan.info.commit, progress: progress)
                        for _ in 0..<(sharing[file.blobName] ?? 1) { progress.fileDone() }
                        return .success(())
                    } catch { return .failure(error) }
                }
            }
            for _ in 0..<min(options.parallel, pending.count) { startNext() }
            while let result = try await group.next() {
                if case .failure(let error) = result, firstError == nil { firstError = error }
                startNext()
            }
        }
        try Task.checkCancellation()
        if let firstError { throw firstError }
        for (file, _) in plan.files { try layout.link(file, commit: plan.info.commit) }
        try layout.writeRef(options.revision, commit: plan.info.commit)
        return layout.snapshot(plan.info.commit)
    }

    /// One blob into `blobs/`: resume its `.incomplete`, check size and SHA-256, rename; a bad file is removed and fetched once more.
    /// A body longer than the listed size is cut there and removed: the hub is not sending what it listed.
    func fetch(_ file: RepoFile, commit: String, progress: PullProgress) async throws {
        let partial = layout.incomplete(file.blobName)
        let path = file.path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? file.path
        let url = try makeURL("/\(repo)/resolve/\(commit)/\(path)")
        for attempt in 1...2 {
            var have = Self.size(of: partial) ?? 0
            if have > file.size { try? FileManager.default.removeItem(atPath: partial); progress.discard(have); have = 0 }
            if have < file.size || (file.size == 0 && Self.size(of: partial) == nil) {
                do {
                    try await http.download(url, to: partial, from: have, size: file.size, name: file.path, revision: options.revision) { progress.add($0) }
                } catch HubError.network(let url, let reason) {
                    if Task.isCancelled { throw CancellationError() }
                    // A connection lost mid-file leaves its bytes in .incomplete: say how far it got and that a rerun resumes.
                    let got = Self.size(of: partial) ?? 0
                    if got > 0 { throw HubError.interrupted(file: file.path, have: got, expected: file.size) }
                    throw HubError.network(url: url, reason: reason)
                } catch let error as HubError where error.spoilsPartialFile {
                    // Bytes past the listed size, or a range from another offset: what is there cannot be resumed.
                    progress.discard((Self.size(of: partial) ?? have) - have)
                    try? FileManager.default.removeItem(atPath: partial)
                    throw error
                }
            }
            let got = Self.size(of: partial) ?? 0
            if got < file.size { throw HubError.interrupted(file: file.path, have: got, expected: file.size) }
            var failure: HubError?
            if got != file.size {
                failure = .sizeMismatch(file: file.path, expected: file.size, found: got)
            } else if let expected = file.sha256 {
                let found = try Self.sha256(of: partial)
                if found != expected.lowercased() { failure = .checksumMismatch(file: file.path, expected: expected, found: found) }
            }
            if let failure {
                try? FileManager.default.removeItem(atPath: partial)
                progress.discard(got)
                if attempt == 2 { throw failure }
                continue
            }
            do { try FileManager.default.moveItem(atPath: partial, toPath: layout.blob(file.blobName)) } catch {
                if Self.size(of: layout.blob(file.blobName)) != file.size { throw HubError.cacheWrite(path: layout.blob(file.blobName), reason: "\(error)") }
            }
            return
        }
    }

    func makeURL(_ tail: String) throws -> URL {
        guard let url = URL(string: http.settings.endpoint + tail) else {
            throw HubError.badMetadata(repo: repo, reason: "cannot form a URL from the endpoint and \(tail)")
        }
        return url
    }

    static func size(of path: String) -> Int64? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.size].flatMap { ($0 as? NSNumber)?.int64Value }
    }

    /// Reads in 8 MiB chunks so a 10 GB file never sits in memory.
    static func sha256(of path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw HubError.cacheWrite(path: path, reason: "cannot read") }
        defer { try? handle.close() }
        var hash = SHA256()
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { hash.update(chunk) }
        return hash.finish().map { String(format: "%02x", $0) }.joined()
    }
}

enum DiskSpace {
    /// Free bytes on the file system holding `path` (or its nearest existing parent).
    static func free(at path: String) -> Int64? {
        var folder = path
        while !FileManager.default.fileExists(atPath: folder), folder != "/" { folder = (folder as NSString).deletingLastPathComponent }
        return (try? FileManager.default.attributesOfFileSystem(forPath: folder))?[.systemFreeSize].flatMap { ($0 as? NSNumber)?.int64Value }
    }
}
