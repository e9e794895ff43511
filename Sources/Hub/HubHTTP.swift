import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The two requests a pull makes, over Foundation's URLSession (libcurl on Linux), each through a `Transfer` delegate.
/// Status codes become `HubError`s here, so no caller ever sees a request or its headers.
struct HubHTTP: Sendable {
    let settings: HubSettings
    let repo: String

    /// The token goes only to the endpoint's origin; `Transfer` keeps that rule on every redirect.
    func request(_ url: URL, range start: Int64 = 0) -> URLRequest {
        var request = URLRequest(url: url)
        request.setValue("sd3-studio", forHTTPHeaderField: "User-Agent")
        if let authorization = settings.authorization, let origin = Origin(url), origin == settings.origin {
            request.setValue(authorization, forHTTPHeaderField: "Authorization")
        }
        if start > 0 { request.setValue("bytes=\(start)-", forHTTPHeaderField: "Range") }
        return request
    }

    /// A JSON answer, refused once it passes `settings.jsonLimit` bytes.
    func getData(_ url: URL, revision: String) async throws -> Data {
        try await perform(request(url), sink: .memory(limit: settings.jsonLimit), revision: revision)
    }

    /// Appends the bytes of `url` from `start` on to `path` (a `.incomplete` file), never past `size` in all;
    /// `received` sees each chunk's size.
    func download(_ url: URL, to path: String, from start: Int64, size: Int64, name: String, revision: String,
                  received: @escaping @Sendable (Int) -> Void) async throws {
        _ = try await perform(request(url, range: start), sink: .file(path: path, start: start, limit: size, name: name),
                              revision: revision, received: received)
    }

    private func perform(_ request: URLRequest, sink: Transfer.Sink, revision: String,
                         received: @escaping @Sendable (Int) -> Void = { _ in }) async throws -> Data {
        guard let url = request.url, let origin = settings.origin else {
            throw HubError.badSetting(name: "the hub endpoint", value: settings.endpoint, expected: "an http or https address")
        }
        let transfer = Transfer(sink: sink, policy: RedirectPolicy(endpoint: origin, authorization: settings.authorization),
                                carriesToken: request.value(forHTTPHeaderField: "Authorization") != nil,
                                limits: .init(connect: settings.connectTimeout, idle: settings.idleTimeout,
                                              slowBytes: settings.slowBytes, slowSeconds: settings.slowSeconds),
                                url: url, received: received)
        let session = URLSession(configuration: Self.configuration, delegate: transfer, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: request)
        // Cancelling the pull's task stops the transfer; what arrived stays in the .incomplete file for the next pull.
        let data = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, Error>) in
                transfer.begin(task, continuation: continuation)
            }
        } onCancel: {
            transfer.cancel()
        }
        if let status = transfer.failedStatus { throw statusError(status, url: url, revision: revision) }
        return data
    }

    /// No cache, cookies or stored credentials: a pull keeps nothing but the files, and writes nothing outside the
    /// hub cache (FoundationNetworking's shared cache and cookie store would create folders under $HOME).
    static var configuration: URLSessionConfiguration {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.urlCredentialStorage = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        return configuration
    }

    func statusError(_ status: Int, url: URL, revision: String) -> HubError {
        switch status {
        case 401: return .unauthorized(repo: repo, page: settings.page(repo: repo), hadToken: settings.hasToken)
        case 403: return .forbidden(repo: repo, page: settings.page(repo: repo))
        case 404: return .notFound(repo: repo, revision: revision)
        default: return .httpStatus(status, url: url.absoluteString)
        }
    }
}
