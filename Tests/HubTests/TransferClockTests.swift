@testable import Hub
import Testing

/// The watchdog's judgement (TransferClock) on a clock the test drives: the connect, idle and low-speed limits as
/// curl applies them, and a tick that comes late (the process was not running) judged from then, not blamed on the
/// server.
@Suite struct TransferClockTests {
    /// connect 2 s, idle 1 s, 1000 bytes per 1.5 s window: ticks every 0.25 s.
    static func clock() -> TransferClock { TransferClock(connect: 2, idle: 1, slowBytes: 1000, slowSeconds: 1.5, now: 100) }

    /// Ticks every `interval` from `start` while `each` says what arrived; the first verdict and when.
    static func run(_ clock: inout TransferClock, from start: Double, to end: Double, responded: Bool = true,
                    _ each: (inout TransferClock, Double) -> Void = { _, _ in }) -> (TransferClock.Verdict, Double)? {
        var now = start
        while now <= end {
            each(&clock, now)
            if let verdict = clock.check(at: now, responded: responded) { return (verdict, now) }
            now += clock.interval
        }
        return nil
    }

    @Test func theLimits() throws {
        var clock = Self.clock()
        #expect(clock.interval == 0.25)
        // No answer: stopped at the first tick past 2 s.
        let noAnswer = try #require(Self.run(&clock, from: 100.25, to: 110, responded: false))
        #expect(noAnswer.0 == .noAnswer && noAnswer.1 == 102.25)
        // Answered, then silent: stalled at the first tick past 1 s of silence.
        clock = Self.clock()
        clock.answered(at: 100.5)
        let stalled = try #require(Self.run(&clock, from: 100.75, to: 110))
        #expect(stalled.0 == .stalled && stalled.1 == 101.75)
        // A byte every 0.5 s is never idle, but 6 bytes a window is too slow: stopped when the first window ends.
        clock = Self.clock()
        clock.answered(at: 100)
        let trickle = try #require(Self.run(&clock, from: 100.25, to: 110) { c, now in if now.truncatingRemainder(dividingBy: 0.5) == 0 { c.received(1, at: now) } })
        #expect(trickle.0 == .tooSlow && trickle.1 == 101.5)
        // 1000 bytes a window, steadily: never stopped; each window starts again.
        clock = Self.clock()
        clock.answered(at: 100)
        #expect(Self.run(&clock, from: 100.25, to: 130) { c, now in c.received(200, at: now) } == nil)
    }

    /// A tick more than two periods and half a second late: the silence and the slow window before it are not the
    /// server's. The same transfer judged from then is stopped only when the server is silent again.
    @Test func aLateTickJudgesFromThen() throws {
        var clock = Self.clock()
        clock.answered(at: 100)
        clock.received(100, at: 100.2)
        #expect(clock.check(at: 100.25, responded: true) == nil)
        // The process did not run for 5 s: far past idle and a whole low-speed window, yet no verdict.
        #expect(clock.check(at: 105.25, responded: true) == nil)
        #expect(clock.silence(at: 105.25) == 0)
        // Silent from then on: stalled a second later, as from a fresh start.
        let stalled = try #require(Self.run(&clock, from: 105.5, to: 110))
        #expect(stalled.0 == .stalled && stalled.1 == 106.5)
        // A tick only one period late is on time: 5 s of silence with ticks 0.75 s apart is stalled.
        clock = Self.clock()
        clock.answered(at: 100)
        #expect(clock.check(at: 100.75, responded: true) == nil)
        #expect(clock.check(at: 101.5, responded: true) == .stalled)
        // Before any answer, too: a late tick does not count the lost time against connect.
        clock = Self.clock()
        #expect(clock.check(at: 103, responded: false) == nil)
        let noAnswer = try #require(Self.run(&clock, from: 103.25, to: 110, responded: false))
        #expect(noAnswer.0 == .noAnswer && noAnswer.1 == 105.25)
    }
}
