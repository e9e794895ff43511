import Foundation
@testable import PollSupport
import Testing

/// Poll: a condition is looked at until it holds or the time is spent, and a long gap between looks (a starved
/// task) is charged one second, not its length.
@Suite struct PollTests {
    @Test func aLateGapIsChargedOneSecond() {
        let start = Date()
        var charge = Poll.Charge(waited: 0, last: start)
        charge.tick(now: start.addingTimeInterval(0.25))
        charge.tick(now: start.addingTimeInterval(180.25))
        charge.tick(now: start.addingTimeInterval(180.75))
        #expect(abs(charge.waited - 1.75) < 1e-9, "\(charge.waited)")
    }

    @Test func stopsWhenTheConditionHoldsOrTheTimeIsSpent() async {
        var looks = 0
        #expect(await Poll.until(seconds: 30, every: 0.001) { looks += 1; return looks == 3 })
        #expect(looks == 3)
        let start = Date()
        looks = 0
        #expect(!(await Poll.until(seconds: 0.2, every: 0.01) { looks += 1; return false }))
        let took = Date().timeIntervalSince(start)
        // At most 21 looks in 0.2 s of 0.01 s sleeps (the last one after the time is spent), at least 2.
        #expect(took >= 0.2 && looks >= 2 && looks <= 22, "\(took) s, \(looks) looks")
        looks = 0
        #expect(Poll.untilBlocking(seconds: 30, every: 0.001) { looks += 1; return looks == 4 } && looks == 4)
        #expect(!Poll.untilBlocking(seconds: 0.05, every: 0.01) { false })
    }
}
