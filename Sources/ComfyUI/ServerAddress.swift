import Foundation
import RegularFiles

/// Where a ComfyUI server listens: `comfyui://HOST:PORT[/PREFIX]` (plain HTTP and WebSocket) or `comfyuis://…` (TLS,
/// default port 443), plus headers sent with every request (an `Authorization` for a server behind a proxy).
/// `http://` and `https://` are taken too. The headers' values are never printed: `description` is scheme, host,
/// port and prefix only.
public struct ServerAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var tls: Bool
    /// A path prefix for a server behind a reverse proxy ("" or "/comfy"), without a trailing slash.
    public var prefix: String
    public var headers: [(name: String, value: String)]
    /// PEM certificates trusted for this server besides the system's (a home server's own CA or self-signed cert).
    public var caFile: String?

    public static func == (a: ServerAddress, b: ServerAddress) -> Bool {
        a.host == b.host && a.port == b.port && a.tls == b.tls && a.prefix == b.prefix && a.caFile == b.caFile
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }

    public init(host: String, port: Int, tls: Bool = false, prefix: String = "", headers: [(name: String, value: String)] = []) {
        (self.host, self.port, self.tls, self.prefix, self.headers) = (host, port, tls, prefix, headers)
    }

    /// Parses one address; the error says what a good one looks like.
    public init(parsing text: String) throws(RemoteError) {
        let example = "give comfyui://HOST:PORT (e.g. comfyui://127.0.0.1:8188) or comfyuis://HOST[:PORT] for TLS"
        let shown = text.oneLineShown
        guard let colon = text.range(of: "://") else { throw RemoteError("backend '\(shown)' is not a server address: \(example)") }
        let scheme = text[..<colon.lowerBound].lowercased()
        switch scheme {
        case "comfyui", "http": tls = false
        case "comfyuis", "https": tls = true
        default: throw RemoteError("backend '\(shown)': unknown scheme '\(scheme.oneLineShown)': \(example)")
        }
        var rest = Substring(text[colon.upperBound...])
        if let slash = rest.firstIndex(of: "/") {
            var path = String(rest[slash...])
            while path.hasSuffix("/") { path.removeLast() }
            prefix = path
            rest = rest[..<slash]
        } else {
            prefix = ""
        }
        guard !rest.contains("@") else { throw RemoteError("backend '\(shown)': put credentials in the config's header or token, not in the address") }
        let hostPart: Substring, portPart: Substring?
        if rest.hasPrefix("[") {
            // An IPv6 literal: [::1]:8188.
            guard let close = rest.firstIndex(of: "]") else { throw RemoteError("backend '\(shown)': unclosed '[' in the host") }
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { throw RemoteError("backend '\(shown)': expected ':PORT' after the host") }
            portPart = after.isEmpty ? nil : after.dropFirst()
        } else if let last = rest.lastIndex(of: ":") {
            hostPart = rest[..<last]
            portPart = rest[rest.index(after: last)...]
        } else {
            hostPart = rest
            portPart = nil
        }
        guard !hostPart.isEmpty, hostPart.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._:".contains($0)) }) else {
            throw RemoteError("backend '\(shown)': '\(String(hostPart).oneLineShown)' is not a host name: \(example)")
        }
        host = String(hostPart)
        if let portPart {
            guard let port = Int(portPart), (1...65_535).contains(port) else {
                throw RemoteError("backend '\(shown)': port '\(String(portPart).oneLineShown)' is not a number from 1 to 65535")
            }
            self.port = port
        } else {
            port = tls ? 443 : 8188
        }
        guard prefix.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "?" && $0 != "#" }) else {
            throw RemoteError("backend '\(shown)': the path '\(prefix.oneLineShown)' has characters a URL path cannot carry")
        }
        headers = []
    }

    /// Several addresses separated by commas.
    public static func list(_ text: String) throws(RemoteError) -> [ServerAddress] {
        var addresses: [ServerAddress] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { throw RemoteError("backend list '\(text.oneLineShown)' has an empty entry") }
            addresses.append(try ServerAddress(parsing: trimmed))
        }
        return addresses
    }

    /// "comfyui://host:port[/prefix]", as the user wrote it (and as PNG metadata records it).
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "comfyuis" : "comfyui")://\(shownHost):\(port)\(prefix)"
    }

    /// "host:port", for status lines and `Backend: comfyui@host:port`.
    public var name: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension String {
    /// At most 80 characters, control characters escaped: user input quoted in one error line.
    var oneLineShown: String { oneLineShown(limit: 80) }

    func oneLineShown(limit: Int) -> String {
        let line = oneLine.replacingOccurrences(of: "\u{2028}", with: " ").replacingOccurrences(of: "\u{2029}", with: " ")
        return line.count > limit ? String(line.prefix(limit - 1)) + "…" : line
    }
}
