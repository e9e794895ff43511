import Foundation
import ImageIO
import ImageMetadata
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// x0 previews and TAESD3 decoding in the pipeline, against diffusers 0.42.1 (scripts/fixtures/taesd3.py): the x0 of
/// every step from diffusers' own latents and transformer output, the x0 of our run, its TAESD3 preview, and a txt2img
/// finished by TAESD3 (StableDiffusion3Pipeline with vae=AutoencoderTiny) at ≥ 45 dB.
@Suite struct PreviewTests {
    static let fixtures = TransformerTests.fixtures
    static let reference = AutoencoderTinyTests.reference
    static let smallTAESD = fixtures + "/taesd3-x2"

    static var parameters: GenerationParameters {
        let c = try! JSONSerialization.jsonObject(with: Data(reference.metadata["case"]!.utf8)) as! [String: Any]
        return PipelineTests.parameters(c.merging(["kind": "txt2img"]) { a, _ in a },
                                        defaults: try! ModelDefaults.resolved(ModelSource(fixtures + "/tiny-sd3")), initImage: RGBImage(width: 1, height: 1, pixels: [0, 0, 0]))
    }

    static func maxAbs(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.data, b.data).map { abs($0 - $1) }.max() ?? .infinity
    }

    static func pipeline(taesd: String?, backend: BackendKind = .oneDNN) throws -> StableDiffusion3Pipeline {
        var options = LoadOptions()
        (options.backend, options.threads, options.taesd) = (backend, 2, taesd)
        return try StableDiffusion3Pipeline(path: fixtures + "/tiny-sd3", options: options)
    }

    /// x0 = x_t − σ_t·v from diffusers' transformer input, guided output and sigma equals diffusers' own, ≤ 1e-5.
    @Test func formulaMatchesDiffusers() throws {
        for i in 0..<Self.parameters.steps {
            let step = "x0.step\(i)"
            let sigma = try Self.reference.tensor(step + ".sigma").data[0]
            let x0 = Denoiser.predictedOriginal(sample: try Self.reference.tensor(step + ".sample"),
                                                velocity: try Self.reference.tensor(step + ".velocity"), sigma: sigma)
            let error = Self.maxAbs(x0, try Self.reference.tensor(step + ".x0"))
            #expect(error <= 1e-5, "step \(i): x0 max abs error \(error)")
        }
    }

    /// Our run's x0 at every step against diffusers' (the latents callback_on_step_end saw came out of the same steps),
    /// within the fp32 limit of the pipeline's chain.
    @Test func runsX0MatchesDiffusers() throws {
        let pipeline = try Self.pipeline(taesd: nil)
        let p = Self.parameters
        let limit = try PipelineTests.latentLimit(pipeline, p, textTokens: p.maxSequenceLength)
        var steps: [StepProgress] = []
        _ = try pipeline.generate(p, onStep: { steps.append($0) })
        #expect(steps.count == p.steps)
        for step in steps {
            let name = "x0.step\(step.index)"
            let (error, allowed) = limit.check(step.denoised, try Self.reference.tensor(name + ".x0"))
            #expect(error <= allowed, "step \(step.index): x0 max abs error \(error) > \(allowed)")
            let (afterError, afterAllowed) = limit.check(step.latents, try Self.reference.tensor(name + ".after"))
            #expect(afterError <= afterAllowed, "step \(step.index): latents max abs error \(afterError) > \(afterAllowed)")
            if step.index + 1 < p.steps {
                // x0 is not the noisy latents: the two differ by σ_next·v, well beyond the limit.
                #expect(Self.maxAbs(step.denoised, step.latents) > 10 * allowed, "step \(step.index): x0 equals the latents")
            }
        }
    }

    /// With a TAESD3 the preview is x0 averaged over 2×2 latent cells and decoded, half the image's side (diffusers:
    /// taesd3-x2 decoding avg_pool2d of diffusers' x0) ≥ 45 dB; without,
    /// it is the latent→RGB projection of x0 at latent size.
    @Test func previewDecodesX0() throws {
        let p = Self.parameters
        let withTAESD = try Self.pipeline(taesd: Self.smallTAESD), without = try Self.pipeline(taesd: nil)
        var previews: [RGBImage] = [], projections: [(RGBImage, Tensor)] = []
        _ = try withTAESD.generate(p, onStep: { previews.append(try withTAESD.preview($0)) })
        _ = try without.generate(p, onStep: { projections.append((try without.preview($0), $0.denoised)) })
        for (i, preview) in previews.enumerated() {
            let info = try #require(Self.reference.info("x0.step\(i).preview"))
            #expect(preview.width == p.width / 2 && preview.height == p.height / 2 && info.shape == [p.height / 2, p.width / 2, 3])
            let quality = PipelineTests.psnr(preview.pixels, Array(Self.reference.bytes(info)))
            #expect(quality >= 45, "step \(i): TAESD3 preview PSNR \(quality) dB")
        }
        for (preview, x0) in projections {
            let (c, h, w) = (x0.dim(1), x0.dim(2), x0.dim(3))
            #expect(preview == LatentPreview.rgb(x0.data, channels: c, width: w, height: h))
            #expect(preview.width == p.width / 2)
        }
    }

    /// `--decoder taesd`: the tiny pipeline finished by TAESD3 equals diffusers' StableDiffusion3Pipeline with
    /// vae=AutoencoderTiny (which decodes latents / 1.0 + 0.0), ≥ 45 dB on both backends.
    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func taesdDecoderMatchesDiffusers(backend: BackendKind) throws {
        let pipeline = try Self.pipeline(taesd: Self.smallTAESD, backend: backend)
        var p = Self.parameters
        p.decoder = .taesd
        let image = try pipeline.generate(p)
        let info = try #require(Self.reference.info("taesd_pipeline.image"))
        #expect(image.width == info.shape[1] && image.height == info.shape[0])
        let quality = PipelineTests.psnr(image.pixels, Array(Self.reference.bytes(info)))
        #expect(quality >= 45, "\(backend.rawValue): PSNR \(quality) dB")
        // The VAE's image of the same latents is another picture: the comparison tells the decoders apart.
        p.decoder = .vae
        #expect(PipelineTests.psnr(try pipeline.generate(p).pixels, Array(Self.reference.bytes(info))) < 30)
    }

    @Test func taesdProblemsAreNamed() throws {
        var p = Self.parameters
        p.decoder = .taesd
        #expect(throws: GenerationError.noTAESD) { try Self.pipeline(taesd: nil).validate(p) }
        // taesd3 upsamples ×8, the tiny pipeline's VAE ×2: refused at load, naming the file.
        let wrongScale = Self.fixtures + "/taesd3"
        let error = try #require(throws: ModelError.self) { try Self.pipeline(taesd: wrongScale) }
        #expect("\(error)".contains(wrongScale) && "\(error)".contains("×8"), "\(error)")
        #expect(throws: ModelError.missingFile(path: "/nonexistent/taesd3")) { try Self.pipeline(taesd: "/nonexistent/taesd3") }
    }

    /// The pooling against a naive mean of each 2×2 block, odd sides dropping their last row or column.
    @Test func averagePoolIsTheMeanOfEachBlock() {
        let (c, h, w) = (3, 5, 7)
        let x = Tensor(shape: [1, c, h, w], data: (0..<(c * h * w)).map { Float(($0 * 37) % 11) - 4.5 })
        let pooled = StableDiffusion3Pipeline.averagePool2x2(x)
        #expect(pooled.shape == [1, c, 2, 3])
        for k in 0..<c {
            for i in 0..<2 {
                for j in 0..<3 {
                    let cells = [(0, 0), (0, 1), (1, 0), (1, 1)].map { x.data[k * h * w + (2 * i + $0.0) * w + 2 * j + $0.1] }
                    #expect(abs(pooled.data[(k * 2 + i) * 3 + j] - cells.reduce(0, +) / 4) <= 1e-6)
                }
            }
        }
        let thin = Tensor(shape: [1, 1, 1, 4], data: [1, 2, 3, 4])
        #expect(StableDiffusion3Pipeline.averagePool2x2(thin) == thin)
    }

    @Test func metadataRecordsTheDecoder() {
        var p = Self.parameters
        #expect(ImageMetadata(parameters: p, model: "m", t5: true, shift: 3, precision: "fp32", seconds: nil).decoder == nil)
        p.decoder = .taesd
        #expect(ImageMetadata(parameters: p, model: "m", t5: true, shift: 3, precision: "fp32", seconds: nil).decoder == "taesd")
    }
}
