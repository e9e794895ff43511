import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// The tiny pipeline's VAE against diffusers 0.42.1 (scripts/fixtures/vae.py), within the fp32 rounding limit of its
/// chain (ParityLimit).
@Suite struct AutoencoderKLTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let reference = try! SafeTensorsFile(path: fixtures + "/vae.safetensors")

    static func expectClose(_ actual: Tensor, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        expectMatches(actual, reference, name, limit: limit, sourceLocation: sourceLocation)
    }

    static let limit: ParityLimit = {
        let image = try! reference.tensor("image")
        let config = try! ComponentFolder(fixtures + "/tiny-sd3/vae").config(AutoencoderKLConfig.self)
        return .vae(config, height: image.dim(2), width: image.dim(3))
    }()

    /// The limit catches a small error: decoding and encoding with bf16-rounded weights fail it.
    @Test func limitCatchesBF16Weights() throws {
        let folder = try ComponentFolder(Self.fixtures + "/tiny-sd3/vae")
        let vae = try AutoencoderKL(config: try folder.config(AutoencoderKLConfig.self), weights: try folder.weights(), precision: .bf16,
                                    withEncoder: true)
        let compute = try Compute(backend: .openBLAS, threads: 2)
        try expectCaught(try vae.decode(try Self.reference.tensor("latents"), compute: compute), Self.reference, "decoded", limit: Self.limit)
        try expectCaught(try vae.encode(try Self.reference.tensor("image"), compute: compute).mean, Self.reference, "mean", limit: Self.limit)
    }

    static func load(withEncoder: Bool = true) throws -> AutoencoderKL {
        let folder = try ComponentFolder(fixtures + "/tiny-sd3/vae")
        return try AutoencoderKL(config: try folder.config(AutoencoderKLConfig.self), weights: try folder.weights(),
                                 precision: .fp32, withEncoder: withEncoder)
    }

    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func decodeAndEncodeMatchDiffusers(backend: BackendKind) throws {
        let vae = try Self.load()
        let compute = try Compute(backend: backend, threads: 2)
        Self.expectClose(try vae.decode(try Self.reference.tensor("latents"), compute: compute), "decoded")
        let (mean, logvar) = try vae.encode(try Self.reference.tensor("image"), compute: compute)
        Self.expectClose(mean, "mean")
        Self.expectClose(logvar, "logvar")
        var generator = TorchCPUGenerator(seed: 1234)
        Self.expectClose(vae.sample(mean: mean, logvar: logvar, generator: &generator), "sample_seed1234")
    }

    @Test func decoderOnlyLoadsWithoutEncoder() throws {
        let vae = try Self.load(withEncoder: false)
        #expect(!vae.hasEncoder)
        #expect(throws: ModelError.self) { try vae.encode(try Self.reference.tensor("image"), compute: Backends.shared) }
        Self.expectClose(try vae.decode(try Self.reference.tensor("latents"), compute: Backends.shared), "decoded")
    }

    @Test func latentScalingRoundTrips() throws {
        let vae = try Self.load(withEncoder: false)
        let z = Tensor(shape: [1, 2], data: [0.5, -1.25])
        let back = vae.fromModelSpace(vae.toModelSpace(z))
        #expect(zip(back.data, z.data).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(vae.toModelSpace(Tensor(shape: [1], data: [0.0609])).data == [0])
    }
}
