/// The watchdog's judgement of a transfer, a pure value: times are seconds on a monotonic clock, given by the caller
/// (`Transfer` passes `DispatchTime`'s uptime; tests pass their own). Like curl's CURLOPT_CONNECTTIMEOUT and
/// CURLOPT_LOW_SPEED_LIMIT/TIME, with an idle limit besides.
struct TransferClock {
    /// What stops a transfer.
    enum Verdict: Equatable {
        /// No answer within `connect` seconds.
        case noAnswer
        /// Answered, then silent for more than `idle` seconds.
        case stalled
        /// Fewer than `slowBytes` in a window of `slowSeconds`.
        case tooSlow
    }

    let connect: Double, idle: Double, slowBytes: Int64, slowSeconds: Double
    /// How often the watchdog looks: a quarter of the shortest limit, between 0.02 and 1 s.
    let interval: Double
    private(set) var lastActivity: Double
    private var lastCheck: Double
    /// The low-speed window: when it began and the bytes that came in it.
    private var windowStart: Double
    private var windowBytes: Int64 = 0

    init(connect: Double, idle: Double, slowBytes: Int64, slowSeconds: Double, now: Double) {
        (self.connect, self.idle, self.slowBytes, self.slowSeconds) = (connect, idle, slowBytes, slowSeconds)
        interval = max(0.02, min(1, min(connect, idle, slowSeconds) / 4))
        (lastActivity, lastCheck, windowStart) = (now, now, now)
    }

    init(_ limits: Transfer.Limits, now: Double) {
        self.init(connect: limits.connect, idle: limits.idle, slowBytes: limits.slowBytes, slowSeconds: limits.slowSeconds, now: now)
    }

    /// The server did something (a redirect, a challenge): not silent.
    mutating func activity(at now: Double) { lastActivity = max(lastActivity, now) }

    /// The final answer's headers: the low-speed window starts with the body.
    mutating func answered(at now: Double) {
        activity(at: now)
        (windowStart, windowBytes) = (lastActivity, 0)
    }

    mutating func received(_ bytes: Int, at now: Double) {
        activity(at: now)
        windowBytes += Int64(bytes)
    }

    /// Seconds since the server last did something.
    func silence(at now: Double) -> Double { max(0, now - lastActivity) }

    /// The watchdog's tick: what stops the transfer now, if anything. `responded`: the final answer's headers came.
    mutating func check(at now: Double, responded: Bool) -> Verdict? {
        // A tick that comes much later than its period means this process was not running: neither was its reading,
        // so the silence or slowness since is ours, not the server's (a pull beside `stress --cpu 2` and busy builds
        // lost 1.5 s windows at full speed). Judge again from now.
        if now - lastCheck > 2 * interval + 0.5 {
            (lastActivity, windowStart, windowBytes) = (now, now, 0)
        }
        lastCheck = now
        let silent = silence(at: now)
        if !responded { return silent > connect ? .noAnswer : nil }
        if silent > idle { return .stalled }
        guard now - windowStart >= slowSeconds else { return nil }
        let slow = windowBytes < slowBytes
        (windowStart, windowBytes) = (now, 0)
        return slow ? .tooSlow : nil
    }
}
