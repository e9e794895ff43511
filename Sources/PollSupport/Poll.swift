import Foundation

/// Polls of things outside a test that send no event (a file's size, a child process, a tmux screen, a fake server's
/// log), shared by the suites (tests only). Waits on a studio session use `StudioSession.waitUntil` instead.
///
/// Only time the test got to look counts against `seconds`: when the suite's other tests hold every thread, a
/// resumption can come minutes late (three tmux tests once gave up at the same instant, their screens already right),
/// so a gap longer than a second between looks is charged as one second, and `condition` is asked once more at the
/// end. A cancelled task stops waiting at once, with that last look.
public enum Poll {
    /// The most one gap between looks is charged.
    static let longestCharge = 1.0

    /// Whether `condition` held within `seconds`, looked at every `every` seconds (from the caller's actor).
    @discardableResult
    public static func until(seconds: Double, every: Double = 0.05, isolation: isolated (any Actor)? = #isolation,
                             _ condition: () -> Bool) async -> Bool {
        var clock = Charge()
        while clock.waited < seconds, !Task.isCancelled {
            if condition() { return true }
            try? await Task.sleep(for: .seconds(every))
            clock.tick()
        }
        return condition()
    }

    /// The same for code that cannot suspend (a waitpid loop in a synchronous test): the thread sleeps between looks.
    @discardableResult
    public static func untilBlocking(seconds: Double, every: Double = 0.02, _ condition: () -> Bool) -> Bool {
        var clock = Charge()
        while clock.waited < seconds {
            if condition() { return true }
            usleep(UInt32(every * 1e6))
            clock.tick()
        }
        return condition()
    }

    /// Seconds waited so far, each gap between looks charged at most `longestCharge`.
    struct Charge {
        var waited = 0.0
        var last = Date()
        mutating func tick(now: Date = Date()) {
            waited += min(now.timeIntervalSince(last), Poll.longestCharge)
            last = now
        }
    }
}
