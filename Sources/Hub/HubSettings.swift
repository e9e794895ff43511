import Foundation

/// Where the hub is and who we are to it, resolved the way huggingface_hub resolves them
/// (huggingface_hub/constants.py): `HF_ENDPOINT`, then the token from the flag, `HF_TOKEN`,
/// or the file `huggingface-cli login` writes (`$HF_TOKEN_PATH`, else `$HF_HOME/token`).
public struct HubSettings: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var endpoint: String
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
        self.init(endpoint: endpoint, token: flag ?? variable ?? Self.tokenFile(environment: environment))
    }

    public var debugDescription: String { description }

    public var hasToken: Bool { token != nil }

    /// The Authorization header value; only the HTTP layer asks for it.
    var authorization: String? { token.map { "Bearer " + $0 } }

    static func tokenFile(environment: [String: String]) -> String? {
        let home = environment["HF_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["XDG_CACHE_HOME"].map { $0 + "/huggingface" })
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache/huggingface")
        let path = environment["HF_TOKEN_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/token"
        return try? String(contentsOfFile: path, encoding: .utf8)
    }

    /// What a log, `print` or `dump` of the settings shows: whether a token is set, never the token.
    public var description: String { "hub \(endpoint), \(token == nil ? "no token" : "token set")" }
    public var customMirror: Mirror { Mirror(self, children: ["endpoint": endpoint, "hasToken": hasToken]) }

    /// The model page users open to accept a gated licence.
    public func page(repo: String) -> String { endpoint + "/" + repo }
}
