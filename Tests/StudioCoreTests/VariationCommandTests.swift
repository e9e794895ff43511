import Foundation
import ImageIO
import ImageMetadata
@testable import StudioCore
import Testing

/// `sd3 generate --variation-seed/--variation-strength`: recorded in the PNG, reproduced by --params-from, and
/// bad values refused by name.
@Suite struct VariationCommandTests {
    @Test(.timeLimit(.minutes(10)))
    func variationIsRecordedAndReproduced() throws {
        let folder = Support.temporaryFolder()
        let common = ["generate", "--model", Support.tinyModel, "-p", "a red circle", "-W", "16", "-H", "16", "--steps", "3", "--threads", "1"]
        let environment = ["XDG_CONFIG_HOME": folder + "/config", "XDG_DATA_HOME": folder + "/data"]
        let first = run(TmuxStudio.sd3, common + ["--seed", "5", "--variation-seed", "9", "--variation-strength", "0.3", "-o", folder + "/a.png"],
                        environment: environment)
        #expect(first.status == 0, "\(first.output)")
        let png = try PNGFile.read(folder + "/a.png")
        let parameters = png.text.first { $0.key == "parameters" }?.value ?? ""
        #expect(parameters.contains("Seed: 5, Size: 16x16, Model: tiny-sd3, Variation seed: 9, Variation seed strength: 0.3, RNG: CPU"), "\(parameters)")
        let again = run(TmuxStudio.sd3, ["generate", "--params-from", folder + "/a.png", "--threads", "1", "-o", folder + "/b.png"], environment: environment)
        #expect(again.status == 0, "\(again.output)")
        #expect(try PNGFile.read(folder + "/b.png").image == png.image, "--params-from did not reproduce the variation")
        // recall reads the variation back (ours and A1111's text) and the studio restores its fields.
        let recalled = try MetadataReader.read(folder + "/a.png")
        #expect(recalled.variationSeed == 9 && recalled.variationStrength == 0.3)
        #expect(recalled.lines.contains("Variation seed: 9") && recalled.lines.contains("Variation seed strength: 0.3"))
        let a1111 = try MetadataReader.parse([("parameters", parameters)], name: "a.png")
        #expect(a1111.variationSeed == 9 && a1111.variationStrength == 0.3)
        var state = StudioState(model: Support.tinyModel)
        state.recall(recalled, from: "a.png")
        #expect(state.text(.variationSeed) == "9" && state.text(.variationStrength) == "0.3")
        state.recall(RecalledParameters(source: .a1111, prompt: "no variation"), from: "b.png")
        #expect(state.text(.variationSeed).isEmpty, "an image without a variation seed clears the field")
        let plain = run(TmuxStudio.sd3, common + ["--seed", "5", "-o", folder + "/c.png"], environment: environment)
        let plainImage = try PNGFile.read(folder + "/c.png").image
        #expect(plain.status == 0 && plainImage != png.image, "the variation changed nothing")

        let bad = run(TmuxStudio.sd3, common + ["--seed", "5", "--variation-seed", "9", "--variation-strength", "1.5"], environment: environment)
        #expect(bad.status != 0 && bad.output.contains("--variation-strength must be between 0 and 1, not 1.5"), "\(bad.output)")
        let half = run(TmuxStudio.sd3, common + ["--seed", "5", "--variation-strength", "0.5"], environment: environment)
        #expect(half.status != 0 && half.output.contains("--variation-strength needs --variation-seed"), "\(half.output)")
    }

    @Test func aBrokenConfigIsReportedByFileLineAndKey() throws {
        let folder = Support.temporaryFolder()
        try FileManager.default.createDirectory(atPath: folder + "/sd3-studio", withIntermediateDirectories: true)
        try "[defaults]\nsteps = 0\n".write(toFile: folder + "/sd3-studio/config.toml", atomically: true, encoding: .utf8)
        let result = run(TmuxStudio.sd3, ["generate", "--model", Support.tinyModel, "-p", "x"], environment: ["XDG_CONFIG_HOME": folder, "XDG_DATA_HOME": folder + "/data"])
        #expect(result.status != 0 && result.output.contains("\(folder)/sd3-studio/config.toml:2: [defaults] steps: 0 is not a whole number from 1 to 1000"),
                "\(result.output)")
        let missing = run(TmuxStudio.sd3, ["generate", "--config", folder + "/none.toml", "-p", "x"])
        #expect(missing.status != 0 && missing.output.contains("\(folder)/none.toml: no such config file"), "\(missing.output)")
    }
}
