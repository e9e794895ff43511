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
    case badRevision(String)
    case badRepo(String)
    case badSetting(name: String, value: String, expected: String)
    case tooLarge(url: String, limit: Int64)
    case tooLong(file: String, expected: Int64)
    case stalled(url: String, seconds: Double)
    case noAnswer(url: String, seconds: Double)
    case tooSlow(url: String, bytes: Int64, seconds: Double)
    case badRange(file: String, asked: Int64, got: String)
    case refusedRedirect(url: String, location: String)

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
        case .badRevision(let revision):
            return "\(HubNames.shown(revision)) is not a revision: give a branch or tag name (letters, digits, '-', '_', '.', '/', no '..') or a 40-hex commit id"
        case .badRepo(let repo):
            return "\(HubNames.shown(repo)) is not a repo id: give ORG/NAME (letters, digits, '-', '_', '.')"
        case .badSetting(let name, let value, let expected):
            return "\(name) is \(HubNames.shown(value)): expected \(expected)"
        case .tooLarge(let url, let limit):
            return "the hub's answer for \(url) is larger than \(limit) bytes: refused"
        case .tooLong(let file, let expected):
            return "the hub sent more than the listed \(expected) bytes for \(file): stopped, and the partial file was removed"
        case .stalled(let url, let seconds):
            return "no data from \(url) for \(Self.seconds(seconds)) s: the transfer was stopped; run the pull again to resume"
        case .tooSlow(let url, let bytes, let seconds):
            return "fewer than \(bytes) bytes in \(Self.seconds(seconds)) s from \(url): the transfer was stopped; run the pull again to resume"
        case .badRange(let file, let asked, let got):
            return "the hub answered the request for \(file) from byte \(asked) with the range \(HubNames.shown(got)): the partial file was removed; run the pull again"
        case .noAnswer(let url, let seconds):
            return "no answer from \(url) within \(Self.seconds(seconds)) s (no network? set HF_ENDPOINT for a mirror)"
        case .refusedRedirect(let url, let location):
            return "the hub redirected \(url) to \(HubNames.shown(location)), which is not an http(s) address: refused"
        }
    }

    /// Errors after which a `.incomplete` file holds bytes that are not the file's.
    var spoilsPartialFile: Bool {
        switch self {
        case .tooLong, .badRange: return true
        default: return false
        }
    }

    private static func seconds(_ value: Double) -> String {
        String(format: "%g", value)
    }
}
