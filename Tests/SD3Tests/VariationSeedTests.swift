import Foundation
import ImageIO
import ImageMetadata
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// Variation seeds: A1111's slerp of two noises (scripts/fixtures/variation.py), exact at strengths 0 and 1,
/// recorded in the metadata.
@Suite struct VariationSeedTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/variation", withExtension: "safetensors")!.path)
    static let model = TransformerTests.fixtures + "/tiny-sd3"

    @Test func matchesA1111() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(c["seed"] as! String)!, variationSeed = UInt64(c["variation_seed"] as! String)!
            let strength = (c["strength"] as! NSNumber).doubleValue, shape = c["shape"] as! [Int]
            var noise = VariationNoise(seed: seed, variation: VariationSeed(seed: variationSeed, strength: strength))
            let values = noise.randn(shape)
            let expected = try Self.reference.tensor("case\(index)").data
            let worst = zip(values, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(values.count == expected.count && worst <= 1e-6,
                    "case \(index) (seed \(seed), variation \(variationSeed) at \(strength)): max abs difference \(worst); first \(values.prefix(3)) vs \(expected.prefix(3))")
            if strength == 1 {
                #expect(values.map(\.bitPattern) == expected.map(\.bitPattern), "case \(index): strength 1 is not the variation noise bit for bit")
            }
        }
    }

    /// The final latents and pixels of one tiny generation.
    static func run(_ pipeline: StableDiffusion3Pipeline, _ p: GenerationParameters) throws -> (latents: [Float], image: RGBImage) {
        var latents: [Float] = []
        let image = try pipeline.generate(p, onStep: { step in if step.index + 1 == step.total { latents = step.latents.data } })
        return (latents, image)
    }

    @Test(arguments: [false, true])
    func strengthZeroIsTheSeedAndOneTheVariationSeed(img2img: Bool) throws {
        let pipeline = try StableDiffusion3Pipeline(path: Self.model)
        var p = GenerationParameters(prompt: "a red circle")
        (p.width, p.height, p.steps, p.seed) = (16, 16, 3, 5)
        if img2img {
            p.initImage = try PNGFile.read(TransformerTests.fixtures + "/init.png").image
            p.strength = 0.8
        }
        let base = try Self.run(pipeline, p)
        var other = p
        other.seed = 99
        let variationSeedAlone = try Self.run(pipeline, other)
        func mixed(_ strength: Double) throws -> (latents: [Float], image: RGBImage) {
            var q = p
            q.variation = VariationSeed(seed: 99, strength: strength)
            return try Self.run(pipeline, q)
        }
        let zero = try mixed(0), one = try mixed(1), half = try mixed(0.5)
        #expect(zero.latents.map(\.bitPattern) == base.latents.map(\.bitPattern), "strength 0: latents differ from the seed's")
        #expect(zero.image == base.image, "strength 0: pixels differ from the seed's")
        #expect(one.latents.map(\.bitPattern) == variationSeedAlone.latents.map(\.bitPattern), "strength 1: latents differ from the variation seed's")
        #expect(one.image == variationSeedAlone.image, "strength 1: pixels differ from the variation seed's")
        #expect(half.latents != base.latents && half.latents != variationSeedAlone.latents, "strength 0.5 gave one of the ends")
        // A small strength stays nearer the seed than the variation seed.
        let small = try mixed(0.1)
        func distance(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
        #expect(distance(small.latents, base.latents) < distance(small.latents, variationSeedAlone.latents))
    }

    @Test func strengthOutsideZeroToOneIsRefused() throws {
        let pipeline = try StableDiffusion3Pipeline(path: Self.model)
        var p = GenerationParameters(prompt: "x")
        (p.width, p.height, p.steps) = (16, 16, 2)
        p.variation = VariationSeed(seed: 1, strength: 1.5)
        #expect(throws: GenerationError.badVariationStrength(1.5)) { try pipeline.validate(p) }
        p.variation = VariationSeed(seed: 1, strength: -0.1)
        #expect(throws: GenerationError.badVariationStrength(-0.1)) { try pipeline.validate(p) }
        p.variation = VariationSeed(seed: 1, strength: .nan)
        #expect(throws: GenerationError.self) { try pipeline.validate(p) }
        #expect(GenerationError.badVariationStrength(1.5).description == "variation strength 1.5: must be between 0 and 1")
    }

    @Test func recordedInTheMetadata() throws {
        var p = GenerationParameters(prompt: "a cat")
        p.seed = 1234
        p.variation = VariationSeed(seed: 987654321, strength: 0.1)
        let metadata = ImageMetadata(parameters: p, model: "/m/sd3", t5: true, shift: 3, precision: "fp32", seconds: nil)
        #expect(metadata.a1111Parameters.contains("Seed: 1234, Size: 1024x1024, Model: sd3, Variation seed: 987654321, Variation seed strength: 0.1, RNG: CPU"),
                "\(metadata.a1111Parameters)")
        let decoded = try JSONDecoder().decode(ImageMetadata.self, from: Data(metadata.json.utf8))
        #expect(decoded.variation == VariationSeed(seed: 987654321, strength: 0.1))
        #expect(metadata.json.contains("\"variationSeed\":987654321"))
        p.variation = VariationSeed(seed: 5, strength: 0)
        let none = ImageMetadata(parameters: p, model: "/m/sd3", t5: true, shift: 3, precision: "fp32", seconds: nil)
        #expect(!none.a1111Parameters.contains("Variation") && none.variation == nil)
    }
}
