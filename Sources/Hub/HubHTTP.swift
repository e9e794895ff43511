import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The two requests a pull makes, over Foundation's URLSession (libcurl on Linux).
/// Status codes become `HubError`s here, so no caller ever sees a request or its headers.
struct HubHTTP: Sendable {
    let settings: HubSettings
    let repo: String

    func request(_ url: URL, range start: Int64 = 0) -> URLRequest {
        var request = URLRequest(url: url)
        request.setValue("sd3-studio", forHTTPHeaderField: "User-Agent")
        if let authorization = settings.authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        if start > 0 { request.setValue("bytes=\(start)-", forHTTPHeaderField: "Range") }
        return request
    }

    func getData(_ url: URL, revision: String) async throws -> Data {
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        let (data, response): (Data, URLResponse)
        do { (data, response) = try await session.data(for: request(url)) } catch { throw networkError(error, url: url) }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if status != 200 { throw statusError(status, url: url, revision: revision) }
        return data
    }

    /// Appends the bytes of `url` from `start` on to `path` (a `.incomplete` file); `received` sees each chunk's size.
    func download(_ url: URL, to path: String, from start: Int64, revision: String,
                  received: @escaping @Sendable (Int) -> Void) async throws {
        let stream = FileStream(path: path, start: start, received: received)
        let session = URLSession(configuration: .ephemeral, delegate: stream, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: request(url, range: start))
        // Cancelling the pull's task stops the transfer; what arrived stays in the .incomplete file for the next pull.
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                stream.begin(continuation)
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
        if let status = stream.failedStatus { throw statusError(status, url: url, revision: revision) }
    }

    func statusError(_ status: Int, url: URL, revision: String) -> HubError {
        switch status {
        case 401: return .unauthorized(repo: repo, page: settings.page(repo: repo), hadToken: settings.hasToken)
        case 403: return .forbidden(repo: repo, page: settings.page(repo: repo))
        case 404: return .notFound(repo: repo, revision: revision)
        default: return .httpStatus(status, url: url.absoluteString)
        }
    }

    func networkError(_ error: Error, url: URL) -> Error {
        if let hub = error as? HubError { return hub }
        let reason = (error as? URLError).map { "URL error \($0.code.rawValue)" } ?? "\(type(of: error))"
        return HubError.network(url: url.absoluteString, reason: reason)
    }
}

/// URLSession's delegate for one download: writes each chunk as it arrives, so an interrupted
/// transfer leaves a `.incomplete` file that the next pull resumes with a Range request.
final class FileStream: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private let path: String
    private var start: Int64
    private let received: @Sendable (Int) -> Void
    private var handle: FileHandle?
    private var continuation: CheckedContinuation<Void, Error>?
    private(set) var failedStatus: Int?
    private var writeError: Error?

    init(path: String, start: Int64, received: @escaping @Sendable (Int) -> Void) {
        self.path = path
        self.start = start
        self.received = received
    }

    func begin(_ continuation: CheckedContinuation<Void, Error>) {
        lock.withLock { self.continuation = continuation }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        lock.lock()
        defer { lock.unlock() }
        guard status == 200 || status == 206 else {
            failedStatus = status
            completionHandler(.cancel)
            return
        }
        do {
            if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            // A 200 to a Range request means the server sends the whole file again: start over.
            if status == 200 { try handle.truncate(atOffset: 0); start = 0 } else { try handle.seek(toOffset: UInt64(start)) }
            self.handle = handle
            completionHandler(.allow)
        } catch {
            writeError = error
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        defer { lock.unlock() }
        guard let handle, writeError == nil else { return }
        do { try handle.write(contentsOf: data); received(data.count) } catch { writeError = error; dataTask.cancel() }
    }

    /// The hub redirects LFS files to a CDN on another host; like huggingface_hub, send the token to the hub only.
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        var next = request
        if request.url?.host != task.originalRequest?.url?.host || request.url?.port != task.originalRequest?.url?.port {
            next.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        if let range = task.originalRequest?.value(forHTTPHeaderField: "Range") { next.setValue(range, forHTTPHeaderField: "Range") }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        try? handle?.close()
        handle = nil
        let continuation = self.continuation
        self.continuation = nil
        let failure: Error? = writeError ?? (failedStatus == nil ? error : nil)
        lock.unlock()
        if let failure {
            let url = task.originalRequest?.url?.absoluteString ?? "the hub"
            if writeError != nil {
                continuation?.resume(throwing: HubError.cacheWrite(path: path, reason: "\(failure)"))
            } else {
                let reason = (failure as? URLError).map { "URL error \($0.code.rawValue)" } ?? "\(type(of: failure))"
                continuation?.resume(throwing: HubError.network(url: url, reason: reason))
            }
        } else {
            continuation?.resume()
        }
    }
}
