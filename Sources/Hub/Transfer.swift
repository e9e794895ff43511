import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// URLSession's delegate for one request, JSON or file: it decides each redirect (RedirectPolicy), keeps the body
/// within its limit as it arrives, and stops a transfer that is silent for too long. A delegate rather than the
/// completion-handler API because FoundationNetworking follows redirects of completion-handler tasks by itself,
/// copying every header, the token included, to wherever the Location points.
final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    /// Where the body goes. A file is written as it arrives (a `.incomplete` the next pull resumes with a Range
    /// request), never past `limit`, the size the hub listed.
    enum Sink {
        case memory(limit: Int64)
        case file(path: String, start: Int64, limit: Int64, name: String)
    }

    /// `idle` alone lets a hub send one byte every idle-minus-one seconds for ever; like curl's
    /// CURLOPT_LOW_SPEED_LIMIT/TIME, a transfer that brings fewer than `slowBytes` in `slowSeconds` is stopped too.
    struct Limits {
        var connect: Double
        var idle: Double
        var slowBytes: Int64
        var slowSeconds: Double
    }

    private let lock = NSLock()
    private let sink: Sink
    private let policy: RedirectPolicy
    private let limits: Limits
    private let url: String
    private let received: @Sendable (Int) -> Void
    private var carriesToken: Bool
    private var buffer = Data()
    private var handle: FileHandle?
    private var position: Int64 = 0
    private var responded = false
    /// The connect, idle and low-speed limits, judged at each watchdog tick (`checkSilence`).
    private var clock: TransferClock
    private var task: URLSessionTask?
    private var watchdog: DispatchSourceTimer?
    private var continuation: CheckedContinuation<Data, Error>?
    private var cancelled = false
    /// Someone wants the transfer stopped (a cancel, a limit, a refused answer); `stopping()` says when it may be.
    private var stopWanted = false
    /// The task was cancelled, or a redirect refused (which ends it by itself): it is never cancelled again.
    private var taskStopped = false
    /// URLSession reported the task's end.
    private var finished = false
    /// A final answer (not a redirect) arrived: no redirect can be waiting for the delegate any more.
    private var receiving = false
    /// Set when this class stopped the transfer; it wins over the cancellation error URLSession reports then.
    private var failure: HubError?
    private var status: Int?

    /// The status of an answer other than 200 or 206, once the task has ended.
    var failedStatus: Int? { lock.withLock { status } }

    init(sink: Sink, policy: RedirectPolicy, carriesToken: Bool, limits: Limits, url: URL, received: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.sink = sink
        self.policy = policy
        self.carriesToken = carriesToken
        self.limits = limits
        self.url = url.absoluteString
        self.received = received
        clock = TransferClock(limits, now: Self.now())
    }

    func begin(_ task: URLSessionTask, continuation: CheckedContinuation<Data, Error>) {
        let timer = lock.withLock { () -> DispatchSourceTimer? in
            guard !cancelled else { return nil }
            self.task = task
            self.continuation = continuation
            clock = TransferClock(limits, now: Self.now())
            let interval = clock.interval
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + interval, repeating: interval)
            timer.setEventHandler { [weak self] in self?.checkSilence() }
            watchdog = timer
            return timer
        }
        // The pull was cancelled before its request started: the task is never resumed.
        guard let timer else { return continuation.resume(throwing: CancellationError()) }
        timer.resume()
        task.resume()
    }

    /// The waiting pull gets its CancellationError now, not when URLSession reports the cancelled task's end:
    /// FoundationNetworking did not always report it for a transfer stalled mid-body, and the pull waited for ever.
    func cancel() {
        lock.lock()
        cancelled = true
        let task = stopping()
        let continuation = takeContinuation()
        lock.unlock()
        task?.cancel()
        continuation?.resume(throwing: CancellationError())
    }

    /// With the lock held: the task to cancel now, if it may be. FoundationNetworking traps when a cancel races the
    /// end of a transfer ("not in the registry",
    /// https://github.com/swiftlang/swift-corelibs-foundation/issues/3296) or comes while a redirect
    /// waits for the delegate's answer ("Received callback for HTTP redirection, but we're not waiting for it": the
    /// cancel fails the transfer before the answer is read). So never twice, never after the end, and before a
    /// final answer only once a second has passed without a delegate call (a waiting redirect reaches
    /// `willPerformHTTPRedirection` within that, and is refused there, which ends the task). The watchdog retries.
    private func stopping() -> URLSessionTask? {
        stopWanted = true
        guard !taskStopped, !finished else { return nil }
        guard receiving || clock.silence(at: Self.now()) >= 1 else { return nil }
        taskStopped = true
        return task
    }

    /// Seconds on the monotonic clock, for `TransferClock`.
    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// With the lock held: the watchdog ends once the task has ended or been stopped.
    private func endWatchdogIfDone() {
        guard finished || taskStopped else { return }
        watchdog?.cancel()
        watchdog = nil
    }

    /// With the lock held: the continuation, once, with the file closed (bytes that arrive later are not written).
    private func takeContinuation() -> CheckedContinuation<Data, Error>? {
        try? handle?.close()
        handle = nil
        defer { continuation = nil }
        return continuation
    }

    /// Before the first response the connect limit applies (connecting, redirects, waiting for headers), then the idle
    /// and low-speed ones.
    private func checkSilence() {
        lock.lock()
        var stopped: (CheckedContinuation<Data, Error>, Result<Data, Error>)?
        var toStop: URLSessionTask?
        defer {
            lock.unlock()
            toStop?.cancel()
            // A stopped transfer ends the wait now, whether or not URLSession reports the cancelled task's end, with
            // what its end would have said: the failure, or an empty body beside the refused status.
            if let (continuation, outcome) = stopped { continuation.resume(with: outcome) }
        }
        guard failure == nil, status == nil, !cancelled, !stopWanted else {
            toStop = stopping()
            if let continuation = takeContinuation() { stopped = (continuation, failure.map { .failure($0) } ?? .success(Data())) }
            endWatchdogIfDone()
            return
        }
        switch clock.check(at: Self.now(), responded: responded) {
        case .noAnswer?: failure = .noAnswer(url: url, seconds: limits.connect)
        case .stalled?: failure = .stalled(url: url, seconds: limits.idle)
        case .tooSlow?: failure = .tooSlow(url: url, bytes: limits.slowBytes, seconds: limits.slowSeconds)
        case nil: break
        }
        if let failure {
            toStop = stopping()
            if let continuation = takeContinuation() { stopped = (continuation, .failure(failure)) }
            endWatchdogIfDone()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        // The answer is given under the lock, so a cancel (see `stopping()`) never falls between the redirect and it.
        lock.lock()
        defer { lock.unlock() }
        clock.activity(at: Self.now())
        // Not following ends the task with the 3xx as its response: a transfer to stop is stopped that way.
        if stopWanted || cancelled || failure != nil || status != nil {
            taskStopped = true
            return completionHandler(nil)
        }
        let range = task.originalRequest?.value(forHTTPHeaderField: "Range")
        switch policy.decide(request, hadToken: carriesToken, range: range) {
        case .follow(let next, let keeps):
            carriesToken = keeps
            completionHandler(next)
        case .refuse:
            // `failure` names the refused Location.
            failure = .refusedRedirect(url: url, location: response.value(forHTTPHeaderField: "Location") ?? request.url?.absoluteString ?? "")
            taskStopped = true
            completionHandler(nil)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let code = (response as? HTTPURLResponse)?.statusCode ?? 0
        lock.lock()
        defer { lock.unlock() }
        // FoundationNetworking ignores the disposition ("Ignoring disposition from completion handler"): the watchdog's
        // next tick cancels a refused transfer that is still running (an endless body would keep coming) and ends the
        // wait. Not cancelling here: a short refused answer has usually ended by then, and a cancel racing the end
        // of a transfer traps in FoundationNetworking.
        responded = true
        receiving = true
        clock.answered(at: Self.now())
        guard failure == nil, code == 200 || code == 206 else {
            if failure == nil { status = code }
            return completionHandler(.cancel)
        }
        let announced = response.expectedContentLength
        switch sink {
        case .memory(let limit):
            if announced > limit { failure = .tooLarge(url: url, limit: limit); return completionHandler(.cancel) }
        case .file(let path, let start, let limit, let name):
            // A 200 to a Range request means the server sends the whole file again: start over. A 206 must start
            // where the request did, or its bytes would land at the wrong offset.
            position = code == 200 ? 0 : start
            let range = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Range") ?? ""
            if code == 206, Self.firstByte(range) != start {
                failure = .badRange(file: name, asked: start, got: range)
                return completionHandler(.cancel)
            }
            if announced > limit - position { failure = .tooLong(file: name, expected: limit); return completionHandler(.cancel) }
            do {
                if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                if code == 200 { try handle.truncate(atOffset: 0) } else { try handle.seek(toOffset: UInt64(position)) }
                self.handle = handle
            } catch {
                failure = .cacheWrite(path: path, reason: "\(error)")
                return completionHandler(.cancel)
            }
        }
        completionHandler(.allow)
    }

    /// The first byte of a Content-Range ("bytes 1000-2999/3000" → 1000), or nil.
    static func firstByte(_ range: String) -> Int64? {
        guard range.hasPrefix("bytes ") else { return nil }
        return Int64(range.dropFirst(6).prefix { $0 != "-" })
    }

    /// A 401 with a WWW-Authenticate header arrives here instead of as a response: no credentials are offered
    /// (the token is a header, not a URLCredential), the task ends and the status says what the hub refused.
    func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
        lock.withLock {
            responded = true
            if failure == nil { status = (challenge.failureResponse as? HTTPURLResponse)?.statusCode ?? 401 }
        }
        completionHandler(.cancelAuthenticationChallenge, nil)
    }

    /// A body refused on the way (too large, too long, unwritable) is stopped by the watchdog's next tick, as above.
    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        defer { lock.unlock() }
        clock.received(data.count, at: Self.now())
        guard failure == nil else { return }
        switch sink {
        case .memory(let limit):
            guard Int64(buffer.count) + Int64(data.count) <= limit else { failure = .tooLarge(url: url, limit: limit); return }
            buffer.append(data)
        case .file(let path, _, let limit, let name):
            guard let handle else { return }
            // Bytes past the listed size are never written: the body is longer than the hub said, so it is not this file.
            let room = limit - position
            let accepted = data.prefix(Int(max(0, min(room, Int64(data.count)))))
            do {
                try handle.write(contentsOf: accepted)
                position += Int64(accepted.count)
                received(accepted.count)
            } catch {
                failure = .cacheWrite(path: path, reason: "\(error)")
                return
            }
            if accepted.count < data.count { failure = .tooLong(file: name, expected: limit) }
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        finished = true
        endWatchdogIfDone()
        let continuation = takeContinuation()
        let outcome: Result<Data, Error>
        if let failure {
            outcome = .failure(failure)
        } else if status != nil {
            outcome = .success(Data())
        } else if let error {
            let reason = (error as? URLError).map { "URL error \($0.code.rawValue)" } ?? "\(type(of: error))"
            outcome = .failure(HubError.network(url: url, reason: reason))
        } else {
            outcome = .success(buffer)
        }
        buffer = Data()
        lock.unlock()
        continuation?.resume(with: outcome)
    }
}
