import Foundation
import FuzzSupport
@testable import StudioCore
import Testing

/// Seeded mutations of the built-in recipes read as `Recipe`: each is refused with one error line that names the file,
/// or read into values within the recipe's ranges.
@Suite struct RecipeFuzzTests {
    @Test func mutatedRecipesNeverCrash() throws {
        let folder = Support.packageRoot + "/recipes"
        let corpus = try FileManager.default.contentsOfDirectory(atPath: folder).sorted().filter { $0.hasSuffix(".toml") }.map {
            [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)))
        }
        #expect(corpus.count == 4)
        let path = "/fuzz/recipe.toml"
        var accepted = 0, refused = 0
        let read = { (bytes: [UInt8]) in
            do throws(TOMLFileError) {
                let recipe = try Recipe.parse(String(decoding: bytes, as: UTF8.self), path: path)
                accepted += 1
                #expect(recipe.steps.map { (1...1000).contains($0) } ?? true)
                #expect(recipe.guidance.map { $0.isFinite && (0...100).contains($0) } ?? true)
                #expect(recipe.shift.map { $0.isFinite && $0 > 0 } ?? true)
                #expect(recipe.loraStrength.isFinite)
            } catch {
                refused += 1
                #expect(error.description.hasPrefix(path) && !error.description.contains("\n"), "\(error.description)")
            }
        }
        let slowest = Fuzz.run(corpus: corpus, seed: 31, read)
        let seconds = Fuzz.confirmedSeconds(slowest, read)
        #expect(seconds < Fuzz.hangGuard, "slowest recipe took \(seconds) s")
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }
}
