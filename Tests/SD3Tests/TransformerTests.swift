import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// The MMDiT against diffusers 0.42.1 (scripts/fixtures/transformer.py): SD3 (tiny-sd3) and an SD3.5-style
/// model with qk-norm and a dual-attention block, with and without skip_layers; within the fp32 rounding limit of its chain (ParityLimit).
@Suite struct TransformerTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let reference = try! SafeTensorsFile(path: fixtures + "/transformer.safetensors")

    static func expectClose(_ actual: Tensor, _ name: String, limit: ParityLimit, sourceLocation: SourceLocation = #_sourceLocation) {
        expectMatches(actual, reference, name, limit: limit, sourceLocation: sourceLocation)
    }

    @Test(arguments: [("sd3", "tiny-sd3/transformer"), ("sd35", "tiny-sd35-transformer")], [BackendKind.oneDNN, .openBLAS])
    func forwardMatchesDiffusers(model: (String, String), backend: BackendKind) throws {
        let folder = try ComponentFolder(Self.fixtures + "/" + model.1)
        let transformer = try SD3Transformer2DModel(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(), precision: .fp32)
        let compute = try Compute(backend: backend, threads: 2)
        let r = Self.reference
        let (latents, text, pooled) = (try r.tensor("latents"), try r.tensor("text"), try r.tensor("pooled"))
        let timesteps = try r.tensor("timesteps").data
        let limit = Self.limit(transformer.config, latents: latents, text: text)
        Self.expectClose(try transformer(latents, text: text, pooled: pooled, timesteps: timesteps, compute: compute), "\(model.0).out", limit: limit)
        Self.expectClose(try transformer(latents, text: text, pooled: pooled, timesteps: timesteps, skipLayers: [0], compute: compute),
                         "\(model.0).out_skip0", limit: limit)
    }

    static func limit(_ c: SD3TransformerConfig, latents: Tensor, text: Tensor) -> ParityLimit {
        .transformer(c, tokens: latents.dim(2) / c.patchSize * (latents.dim(3) / c.patchSize) + text.dim(1))
    }

    /// The limit catches a small error: both transformers with bf16-rounded weights fail it.
    @Test(arguments: [("sd3", "tiny-sd3/transformer"), ("sd35", "tiny-sd35-transformer")])
    func limitCatchesBF16Weights(model: (String, String)) throws {
        let folder = try ComponentFolder(Self.fixtures + "/" + model.1)
        let transformer = try SD3Transformer2DModel(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(), precision: .bf16)
        let r = Self.reference
        let (latents, text, pooled) = (try r.tensor("latents"), try r.tensor("text"), try r.tensor("pooled"))
        let out = try transformer(latents, text: text, pooled: pooled, timesteps: try r.tensor("timesteps").data,
                                  compute: try Compute(backend: .openBLAS, threads: 2))
        try expectCaught(out, r, "\(model.0).out", limit: Self.limit(transformer.config, latents: latents, text: text))
    }

    /// torch takes exp with SLEEF (≤ 1 ulp from glibc's), so a frequency may differ by one ulp (2⁻²⁴ relative
    /// for f ≤ 1); the angle t·f then differs by up to t·2⁻²³, which bounds cos/sin. Row by row.
    @Test func timestepSinusoid() throws {
        let timesteps: [Float] = [1000, 987.3806, 8.928571701049805, 0]
        let actual = CombinedTimestepTextProjEmbeddings.sinusoid(timesteps)
        let expected = try Self.reference.tensor("sinusoid")
        for (row, t) in timesteps.enumerated() {
            let bound = t * 0x1p-23 + 1e-6
            let worst = (0..<256).map { abs(actual.data[row * 256 + $0] - expected.data[row * 256 + $0]) }.max()!
            #expect(worst <= bound, "t = \(t): max abs error \(worst) > \(bound)")
        }
    }

    @Test func cancellationStopsBetweenBlocks() throws {
        let folder = try ComponentFolder(Self.fixtures + "/tiny-sd3/transformer")
        let transformer = try SD3Transformer2DModel(config: try folder.config(SD3TransformerConfig.self), weights: try folder.weights(), precision: .fp32)
        let r = Self.reference
        #expect(throws: CancellationError.self) {
            try transformer(try r.tensor("latents"), text: try r.tensor("text"), pooled: try r.tensor("pooled"),
                            timesteps: try r.tensor("timesteps").data, compute: Backends.shared, isCancelled: { true })
        }
    }
}
