import Testing
@testable import SD3

/// The one rule for which model opens: given > $SD3_MODEL (not empty) > the config's > the demo model.
@Suite struct ModelChoiceTests {
    @Test func theOrderOfTheSources() {
        let demo = DemoModel.locate()
        #expect(ModelChoice.resolve(given: "/flag", configured: "/config", environment: ["SD3_MODEL": "/env"]) == "/flag")
        #expect(ModelChoice.resolve(given: nil, configured: "/config", environment: ["SD3_MODEL": "/env"]) == "/env")
        #expect(ModelChoice.resolve(given: nil, configured: "/config", environment: ["SD3_MODEL": ""]) == "/config")
        #expect(ModelChoice.resolve(given: nil, configured: "~/models/m", environment: ["HOME": "/home/u"]) == "/home/u/models/m")
        #expect(ModelChoice.resolve(given: nil, configured: nil, environment: ["SD3_MODEL": ""]) == demo)
    }

    @Test func aListNamesEachOnceInOrder() {
        let demo = DemoModel.locate().map { [$0] } ?? []
        #expect(ModelChoice.listed(configured: "/config", environment: ["SD3_MODEL": "/env"]) == ["/env", "/config"] + demo)
        #expect(ModelChoice.listed(configured: "/same", environment: ["SD3_MODEL": "/same"]) == ["/same"] + demo)
        #expect(ModelChoice.listed(configured: nil, environment: ["SD3_MODEL": ""]) == demo)
    }
}
