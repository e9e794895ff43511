import Foundation
import ImageIO
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

/// `sd3 generate --decoder taesd --taesd PATH --preview-every N --preview-path P` as a separate process, on the tiny
/// pipeline with the x2 TAESD3 fixture (scripts/fixtures/taesd3.py), with no TAESD3 to be found elsewhere.
@Suite struct TAESDCommandTests {
    static let fixtures = Support.packageRoot + "/Tests/SD3Tests/Fixtures"
    static let taesd = fixtures + "/taesd3-x2"

    /// An environment with empty models folder, config and Hugging Face cache: nothing found by accident.
    static func environment() -> [String: String] {
        let home = Support.temporaryFolder()
        return ["XDG_DATA_HOME": home + "/data", "XDG_CONFIG_HOME": home + "/config", "HF_HUB_CACHE": home + "/hub",
                "HF_HOME": home + "/hf", "XDG_CACHE_HOME": home + "/cache"]
    }

    static let base = ["generate", "--model", Support.tinyModel, "-p", "a red circle at the top", "-W", "32", "-H", "32", "--steps", "4",
                       "-g", "5", "--seed", "42", "--threads", "1", "--no-history"]

    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        var total = 0.0
        for (x, y) in zip(a, b) {
            let d = Double(Int(x) - Int(y))
            total += d * d
        }
        let mse = total / Double(max(a.count, 1))
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    /// The image is the in-process pipeline's TAESD3 image (PreviewTests holds that one against diffusers), not the VAE's;
    /// the PNG records the decoder; the preview file holds the last step's x0 through TAESD3 at half size.
    @Test func decoderTaesdAndPreviews() throws {
        let out = Support.temporaryFolder()
        let made = run(TmuxStudio.sd3, Self.base + ["--decoder", "taesd", "--taesd", Self.taesd, "--preview-every", "3",
                                                      "--preview-path", out + "/preview.png", "-o", out + "/a.png"], environment: Self.environment())
        #expect(made.status == 0, "\(made.output)")
        let written = try PNGFile.read(out + "/a.png")
        let metadata = try JSONDecoder().decode(ImageMetadata.self, from: Data(try #require(written.text.first { $0.key == "sd3-studio" }).value.utf8))
        #expect(metadata.decoder == "taesd")
        var options = LoadOptions()
        (options.threads, options.taesd) = (1, Self.taesd)
        let pipeline = try StableDiffusion3Pipeline(path: Support.tinyModel, options: options)
        var p = GenerationParameters(prompt: "a red circle at the top")
        (p.width, p.height, p.steps, p.guidanceScale, p.seed, p.maxSequenceLength) = (32, 32, 4, 5, 42, 256)
        p.decoder = .taesd
        var last: StepProgress?
        let expected = try pipeline.generate(p, onStep: { last = $0 })
        #expect(Self.psnr(written.image.pixels, expected.pixels) >= 45)
        p.decoder = .vae
        #expect(Self.psnr(written.image.pixels, try pipeline.generate(p).pixels) < 30)
        let preview = try PNGFile.read(out + "/preview.png").image
        #expect(preview.width == 16 && preview.height == 16)
        #expect(Self.psnr(preview.pixels, try pipeline.preview(try #require(last)).pixels) >= 45)
        #expect(made.output.contains("x0 through TAESD3"), "\(made.output)")
    }

    /// Without a TAESD3 the previews are the latent→RGB projection at latent size, and the VAE decodes.
    @Test func previewsWithoutTAESD() throws {
        let out = Support.temporaryFolder()
        let made = run(TmuxStudio.sd3, Self.base + ["--preview-every", "1", "--preview-path", out + "/p.png", "-o", out + "/a.png"],
                       environment: Self.environment())
        #expect(made.status == 0 && made.output.contains("latent→RGB projection"), "\(made.output)")
        #expect(try PNGFile.read(out + "/p.png").image.width == 16)
    }

    /// Wrong flags: one line, status 1, the flag named, nothing written.
    @Test(arguments: [
        (["--decoder", "taesd"], "--taesd PATH"),
        (["--decoder", "tiny"], "--decoder must be vae or taesd"),
        (["--preview-every", "0", "--preview-path", "/tmp/p.png"], "--preview-every must be between 1 and 1000"),
        (["--preview-every", "2"], "--preview-every needs --preview-path"),
        (["--preview-path", "/tmp/p.png"], "--preview-path needs --preview-every"),
        (["--preview-every", "1", "--preview-path", "/tmp"], "is a folder"),
        (["--preview-every", "1", "--preview-path", "/nonexistent/p.png"], "does not exist"),
        (["--decoder", "taesd", "--taesd", "/nonexistent/taesd3"], "/nonexistent/taesd3"),
        (["--decoder", "taesd", "--taesd", fixtures + "/taesd3"], "×8"),
        (["--decoder", "taesd", "--taesd", "/dev/zero"], "is a device"),
        (["--decoder", "taesd", "--taesd", fixtures + "/tiny-sd3/vae"], "_class_name is AutoencoderKL"),
    ])
    func badFlags(_ flags: [String], _ message: String) throws {
        let out = Support.temporaryFolder()
        let result = run(TmuxStudio.sd3, Self.base + flags + ["-o", out + "/a.png"], environment: Self.environment())
        #expect(result.status == 1, "\(flags): status \(result.status), \(result.output)")
        let lines = result.output.split(separator: "\n").filter { !$0.hasPrefix("loading") }
        #expect(lines.count == 1 && result.output.contains(message), "\(flags): \(result.output)")
        #expect(!FileManager.default.fileExists(atPath: out + "/a.png"))
    }
}
