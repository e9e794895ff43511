import Foundation

/// Where the hub is and who we are to it, resolved the way huggingface_hub resolves them
/// (huggingface_hub/constants.py): `HF_ENDPOINT`, then the token from the flag, `HF_TOKEN`,
/// or the file `huggingface-cli login` writes (`$HF_TOKEN_PATH`, else `$HF_HOME/token`).
public struct HubSettings: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var endpoint: String
    /// Seconds to wait for a response's headers (connecting, then each redirect) before giving up.
    public var connectTimeout: Double = 20
    /// Seconds a transfer may go without a byte before it is stopped (huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT, 10 s).
    public var idleTimeout: Double = 10
    /// A transfer that brings fewer than `slowBytes` in any `slowSeconds` is stopped: 1 kB a minute is no download.
    public var slowBytes: Int64 = 1024
    public var slowSeconds: Double = 60
    /// The largest JSON answer read (model info); a bigger one is refused without being kept whole.
    public var jsonLimit: Int64 = 16 << 20
    /// A setting from the environment that could not be used; the pull refuses to start with it.
    var problem: HubError?
    /// Kept private so no description or dump of the settings can show it.
    private let token: String?

    public init(endpoint: String, token: String?) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        let trimmed = token?.trimmingCharacters(in: .whitespacesAndNewlines)
        self.token = (trimmed?.isEmpty ?? true) ? nil : trimmed
    }

    public init(token flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let endpoint = environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        let variable = environment["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        var file: Result<String?, HubError> = .success(nil)
        if flag == nil, variable == nil { file = Self.tokenFile(environment: environment) }
        self.init(endpoint: endpoint, token: flag ?? variable ?? (try? file.get()) ?? nil)
        if case .failure(let error) = file { problem = error }
        if let text = environment["HF_HUB_DOWNLOAD_TIMEOUT"], !text.isEmpty {
            if let seconds = Double(text), seconds.isFinite, (0.1...3600).contains(seconds) { idleTimeout = seconds } else {
                problem = .badSetting(name: "HF_HUB_DOWNLOAD_TIMEOUT", value: text, expected: "seconds from 0.1 to 3600")
            }
        }
        if origin == nil { problem = .badSetting(name: "HF_ENDPOINT", value: self.endpoint, expected: "an http or https address") }
        // Credentials in the address would be printed with every URL an error names; the token has its own place.
        if let parts = URLComponents(string: self.endpoint), parts.user != nil || parts.password != nil {
            self.endpoint = parts.scheme.map { $0 + "://" } ?? ""
            self.endpoint += (parts.host ?? "") + (parts.port.map { ":\($0)" } ?? "") + parts.path
            problem = .badSetting(name: "HF_ENDPOINT", value: self.endpoint + " with a user or password",
                                  expected: "an address without credentials (give the token with --token or HF_TOKEN)")
        }
    }

    /// Scheme, host and port of the endpoint: the only place the token is sent.
    var origin: Origin? { URL(string: endpoint).flatMap(Origin.init) }

    /// The settings a pull can start with, or the first one that cannot be used.
    func check() throws {
        if let problem { throw problem }
        if origin == nil { throw HubError.badSetting(name: "the hub endpoint", value: endpoint, expected: "an http or https address") }
        for (name, value) in [("the connect timeout", connectTimeout), ("the idle timeout", idleTimeout), ("the low-speed window", slowSeconds)] where !(value.isFinite && value > 0 && value <= 3600) {
            throw HubError.badSetting(name: name, value: "\(value)", expected: "seconds from 0 to 3600")
        }
        if slowBytes < 0 { throw HubError.badSetting(name: "the low-speed limit", value: "\(slowBytes)", expected: "a number of bytes") }
        if jsonLimit <= 0 { throw HubError.badSetting(name: "the JSON size limit", value: "\(jsonLimit)", expected: "a positive number of bytes") }
    }

    public var debugDescription: String { description }

    public var hasToken: Bool { token != nil }

    /// The Authorization header value; only the HTTP layer asks for it.
    var authorization: String? { token.map { "Bearer " + $0 } }

    /// The token `huggingface-cli login` wrote: nil when there is no file; an error when the path is not a regular
    /// file of at most 64 KiB (a FIFO or /dev/zero there would block or fill memory), or not UTF-8.
    static func tokenFile(environment: [String: String]) -> Result<String?, HubError> {
        let home = environment["HF_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["XDG_CACHE_HOME"].map { $0 + "/huggingface" })
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache/huggingface")
        let named = environment["HF_TOKEN_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/token"
        // attributesOfItem does not follow links; a token file may well be one.
        let path = URL(fileURLWithPath: named).resolvingSymlinksInPath().path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return .success(nil) }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        let expected = "a regular file of at most 64 KiB holding the token"
        guard attributes[.type] as? FileAttributeType == .typeRegular, size <= 64 << 10 else {
            return .failure(.badSetting(name: "the token file", value: path, expected: expected))
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            return .failure(.badSetting(name: "the token file", value: path, expected: expected + " as UTF-8 text"))
        }
        return .success(text)
    }

    /// What a log, `print` or `dump` of the settings shows: whether a token is set, never the token.
    public var description: String { "hub \(endpoint), \(token == nil ? "no token" : "token set")" }
    public var customMirror: Mirror { Mirror(self, children: ["endpoint": endpoint, "hasToken": hasToken]) }

    /// The model page users open to accept a gated licence.
    public func page(repo: String) -> String { endpoint + "/" + repo }
}
