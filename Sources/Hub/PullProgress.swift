import Foundation

/// One progress line for a whole pull: bytes so far of the bytes to fetch, rate, ETA and files done.
/// Downloads report from URLSession's threads, so the counters sit behind a lock; `show` gets at most ~4 lines a second.
public final class PullProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int64
    private let fileCount: Int
    private let started = Date()
    private var received: Int64 = 0
    private var filesDone = 0
    private var lastShown = Date.distantPast
    private let show: @Sendable (String) -> Void

    public init(total: Int64, files: Int, show: @escaping @Sendable (String) -> Void) {
        self.total = total
        self.fileCount = files
        self.show = show
    }

    func add(_ bytes: Int) { update(force: false) { $0.received += Int64(bytes) } }
    /// A removed bad file's bytes will come again.
    func discard(_ bytes: Int64) { update(force: false) { $0.received -= bytes } }
    func fileDone() { update(force: true) { $0.filesDone += 1 } }

    public var bytesReceived: Int64 { lock.withLock { received } }

    private func update(force: Bool, _ change: (PullProgress) -> Void) {
        lock.lock()
        change(self)
        let now = Date()
        guard force || now.timeIntervalSince(lastShown) >= 0.25 else { lock.unlock(); return }
        lastShown = now
        let text = line(now: now)
        lock.unlock()
        show(text)
    }

    /// "1.2 GB / 4.5 GB  35.2 MB/s  ETA 1m32s  3/12 files".
    public func line(now: Date = Date()) -> String {
        let seconds = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(received) / seconds
        let eta = rate > 0 ? Self.duration(Double(total - received) / rate) : "--"
        return "\(Self.bytes(received)) / \(Self.bytes(total))  \(Self.bytes(Int64(min(max(rate, 0), 1e15))))/s  ETA \(eta)  \(filesDone)/\(fileCount) files"
    }

    public static func bytes(_ count: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(max(count, 0))
        var unit = 0
        while value >= 1000, unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// "--" past about three years: a rate of a few bytes an hour says nothing about the end.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 1e8 else { return "--" }
        let whole = Int(max(seconds, 0).rounded())
        if whole >= 3600 { return "\(whole / 3600)h\(whole % 3600 / 60)m" }
        return whole >= 60 ? "\(whole / 60)m\(whole % 60)s" : "\(whole)s"
    }
}
