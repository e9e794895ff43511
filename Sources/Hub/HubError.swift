import Foundation

/// What a pull can meet, each one line for the CLI. No case carries a header or the token:
/// messages are built from the repo id, paths, sizes and status codes only.
public enum HubError: Error, CustomStringConvertible, Equatable {
    case unauthorized(repo: String, page: String, hadToken: Bool)
    case forbidden(repo: String, page: String)
    case notFound(repo: String, revision: String)
    case httpStatus(Int, url: String)
    case network(url: String, reason: String)
    case badMetadata(repo: String, reason: String)
    case diskFull(needed: Int64, free: Int64, folder: String)
    case checksumMismatch(file: String, expected: String, found: String)
    case sizeMismatch(file: String, expected: Int64, found: Int64)
    case interrupted(file: String, have: Int64, expected: Int64)
    case cacheWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .unauthorized(let repo, let page, let hadToken):
            return hadToken
                ? "the hub refused the token for \(repo) (401): check it, or create a read token at https://huggingface.co/settings/tokens"
                : "\(repo) is gated: accept its licence at \(page), then pass --token, set HF_TOKEN or run `huggingface-cli login`"
        case .forbidden(let repo, let page):
            return "access to \(repo) is not granted to this token (403): accept the licence at \(page) or use a token with read access"
        case .notFound(let repo, let revision):
            return "repository \(repo) (revision \(revision)) not found on the hub (404): check the id, or pass a token if it is private"
        case .httpStatus(let status, let url):
            return "the hub answered HTTP \(status) for \(url)"
        case .network(let url, let reason):
            return "cannot reach \(url): \(reason) (no network? set HF_ENDPOINT for a mirror)"
        case .badMetadata(let repo, let reason):
            return "unexpected model info for \(repo): \(reason)"
        case .diskFull(let needed, let free, let folder):
            return "not enough disk space in \(folder): the pull needs \(needed) bytes, \(free) are free"
        case .checksumMismatch(let file, let expected, let found):
            return "checksum mismatch for \(file): expected sha256 \(expected), got \(found) (the file was removed)"
        case .sizeMismatch(let file, let expected, let found):
            return "size mismatch for \(file): expected \(expected) bytes, got \(found) (the file was removed)"
        case .interrupted(let file, let have, let expected):
            return "download of \(file) stopped at \(have) of \(expected) bytes; run the pull again to resume"
        case .cacheWrite(let path, let reason):
            return "cannot write the cache at \(path): \(reason)"
        }
    }
}
