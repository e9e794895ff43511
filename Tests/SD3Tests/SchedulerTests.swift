import Foundation
import Testing
@testable import SD3

/// FlowMatchEulerDiscreteScheduler bit for bit against diffusers 0.42.1 (scripts/fixtures/scheduler.py).
@Suite struct SchedulerTests {
    nonisolated(unsafe) static let fixture: [String: Any] = {
        let url = Bundle.module.url(forResource: "Fixtures/scheduler", withExtension: "json")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    static func floats(_ value: Any?) -> [Float] { (value as! [NSNumber]).map { Float($0.doubleValue) } }

    @Test func schedulesAreBitExact() throws {
        for case let c as [String: Any] in Self.fixture["cases"] as! [Any] {
            var config = FlowMatchEulerDiscreteScheduler.Config(shift: (c["shift"] as! NSNumber).doubleValue)
            if let terminal = (c["extra"] as! [String: Any])["shift_terminal"] as? NSNumber { config.shiftTerminal = terminal.doubleValue }
            var scheduler = try FlowMatchEulerDiscreteScheduler(config: config)
            let steps = c["steps"] as! Int
            try scheduler.setTimesteps(steps)
            let label = "shift \(config.shift), \(steps) steps"
            #expect(scheduler.sigmaMin == Double(c["sigma_min"] as! String)!, "\(label): sigma_min")
            #expect(scheduler.sigmaMax == Double(c["sigma_max"] as! String)!, "\(label): sigma_max")
            #expect(scheduler.sigmas == Self.floats(c["sigmas"]), "\(label): sigmas \(scheduler.sigmas.prefix(4))")
            #expect(scheduler.timesteps == Self.floats(c["timesteps"]), "\(label): timesteps")
            for (strength, begin) in c["begin_index"] as! [String: Int] {
                #expect(scheduler.beginIndex(strength: Double(strength)!) == begin, "\(label): begin index at strength \(strength)")
            }
        }
    }

    @Test func theSpecsTwentyEightStepScheduleStillHolds() throws {
        var scheduler = try FlowMatchEulerDiscreteScheduler(config: .init(shift: 3))
        try scheduler.setTimesteps(28)
        #expect(scheduler.sigmas.count == 29 && scheduler.sigmas.last == 0)
        #expect(abs(scheduler.sigmas[1] - 0.98738062) < 1e-7 && abs(scheduler.sigmas[27] - 0.00892857) < 1e-7)
        #expect(scheduler.timesteps[27] == 8.928571701049805)
    }

    @Test func stepAndScaleNoiseAreBitExact() throws {
        var scheduler = try FlowMatchEulerDiscreteScheduler(config: .init(shift: 3))
        try scheduler.setTimesteps(28)
        let s = Self.fixture["step"] as! [String: Any]
        let (sample, velocity, noise) = (Self.floats(s["sample"]), Self.floats(s["velocity"]), Self.floats(s["noise"]))
        #expect(scheduler.step(velocity, sample: sample, index: 0) == Self.floats(s["stepped_index0"]))
        #expect(scheduler.scaleNoise(sample, noise: noise, index: 11) == Self.floats(s["scaled_index11"]))
    }

    @Test func badConfigsAreRejected() throws {
        let json = #"{"shift": 3.0, "use_karras_sigmas": true}"#
        let config = try JSONDecoder().decode(FlowMatchEulerDiscreteScheduler.Config.self, from: Data(json.utf8))
        #expect(throws: SchedulerError.unsupported("FlowMatchEulerDiscreteScheduler option(s) use_karras_sigmas")) {
            try FlowMatchEulerDiscreteScheduler(config: config)
        }
        var scheduler = try FlowMatchEulerDiscreteScheduler(config: .init(shift: 3))
        #expect(throws: SchedulerError.invalidSteps(0)) { try scheduler.setTimesteps(0) }
    }
}
