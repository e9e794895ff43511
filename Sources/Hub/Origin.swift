import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Scheme, host and port, as browsers compare origins (RFC 6454): "http://localhost:8080" and "http://127.0.0.1:8080"
/// are two origins, and so are "https://hub" and "http://hub". The token goes to the endpoint's origin only.
struct Origin: Equatable, Sendable {
    var scheme: String
    var host: String
    var port: Int

    /// Nil for anything but http(s) with a host.
    init?(_ url: URL) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        self.scheme = scheme
        self.host = host
        port = url.port ?? (scheme == "https" ? 443 : 80)
    }
}

/// What the client does with a redirect, decided from the endpoint's origin alone (a pure function, so every kind of
/// redirect can be tested without a server that speaks TLS).
struct RedirectPolicy: Sendable {
    let endpoint: Origin
    let authorization: String?

    enum Decision: Equatable {
        /// Follow with this request; `carriesToken` says whether it holds the Authorization header.
        case follow(URLRequest, carriesToken: Bool)
        case refuse
    }

    /// `next` is the request the URL loading system built for the Location (on Linux a copy of the previous request,
    /// Authorization included); `hadToken` whether the previous hop carried it. The header stays only while every hop
    /// is on the endpoint's origin: once dropped it is not added back. Range is kept from the original request.
    func decide(_ next: URLRequest, hadToken: Bool, range: String?) -> Decision {
        guard let url = next.url, let origin = Origin(url) else { return .refuse }
        var request = next
        let keep = hadToken && origin == endpoint && authorization != nil
        request.setValue(keep ? authorization : nil, forHTTPHeaderField: "Authorization")
        request.setValue(range, forHTTPHeaderField: "Range")
        return .follow(request, carriesToken: keep)
    }
}
