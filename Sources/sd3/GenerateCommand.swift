import ArgumentParser
import Foundation
import ImageIO
import SD3
import Tensors

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Make an image from a prompt (txt2img), or from a prompt and an image (img2img, --init-image).")

    @Option(help: "A diffusers SD3 model folder (model_index.json, transformer/, vae/, text encoders and tokenizers).")
    var model: String
    @Option(name: .shortAndLong, help: "What to draw.") var prompt: String
    @Option(name: [.customShort("n"), .long], help: "What to avoid (encoded even when empty, as diffusers does).")
    var negativePrompt = ""
    @Option(name: [.customShort("W"), .long], help: "Image width in pixels (default: the model's; a multiple of 16 for SD3).") var width: Int?
    @Option(name: [.customShort("H"), .long], help: "Image height in pixels (default: the model's).") var height: Int?
    @Option(help: "Denoising steps.") var steps = 28
    @Option(name: [.customShort("g"), .long], help: "Classifier-free guidance scale (≤ 1 turns guidance off).") var guidance = 7.0
    @Option(help: "Seed (0…2⁶⁴−1; torch uses the low 32 bits). Default: a random one, printed and recorded.") var seed: UInt64?
    @Option(help: "T5 tokens (1…512).") var maxSequenceLength = 256
    @Flag(help: "Do not load T5-XXL (its embeddings become zeros; saves memory and time).") var noT5 = false
    @Option(help: "fp32 (parity) or bf16 weights.") var precision: String = "fp32"
    @Option(help: "onednn or openblas.") var backend: String = "onednn"
    @Option(help: "Engine threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "img2img: the starting PNG, resized to the output size.") var initImage: String?
    @Option(help: "img2img: how much of the schedule to run (0…1).") var strength = 0.6
    @Option(help: "Skip-layer guidance blocks, e.g. 7,8,9 (SD3.5 Medium).") var slgLayers: String?
    @Option(help: "Skip-layer guidance scale.") var slgScale = 2.8
    @Option(name: .shortAndLong, help: "Where to write the PNG (default: sd3-SEED.png; an existing file is never overwritten).")
    var output: String?

    func run() throws {
        guard let precision = Precision(rawValue: precision) else { throw ValidationError("--precision must be fp32 or bf16, not '\(self.precision)'") }
        guard let backend = BackendKind(rawValue: backend) else { throw ValidationError("--backend must be onednn or openblas, not '\(self.backend)'") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
        var options = LoadOptions()
        (options.precision, options.backend, options.threads) = (precision, backend, threads)
        options.useT5 = !noT5
        options.withVAEEncoder = initImage != nil
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = negativePrompt
        p.steps = steps
        p.guidanceScale = guidance
        p.seed = seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        p.maxSequenceLength = maxSequenceLength
        if let initImage {
            p.initImage = try PNGFile.read(initImage).image
            p.strength = strength
        }
        if let slgLayers {
            let layers = slgLayers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !layers.isEmpty, layers.allSatisfy({ $0 != nil }) else { throw ValidationError("--slg-layers must be numbers separated by commas, e.g. 7,8,9") }
            var slg = SkipLayerGuidance(layers: layers.map { $0! })
            slg.scale = slgScale
            p.skipLayerGuidance = slg
        }
        let started = Date()
        log("loading \(model)")
        let pipeline = try StableDiffusion3Pipeline(path: model, options: options)
        let defaultSide = pipeline.transformer.config.sampleSize * pipeline.vae.config.scaleFactor
        p.width = width ?? defaultSide
        p.height = height ?? defaultSide
        try pipeline.validate(p)
        let target = try outputPath(seed: p.seed)
        Interrupt.install()
        log(String(format: "loaded in %.1f s; seed %llu, %d×%d, %d steps, guidance %g%@", Date().timeIntervalSince(started), p.seed,
                   p.width, p.height, p.steps, p.guidanceScale, pipeline.promptEncoder.hasT5 ? "" : ", T5 off"))
        let encodeStart = Date()
        let conditioning = try pipeline.encode(p)
        for warning in conditioning.warnings { log("warning: \(warning)") }
        log(String(format: "prompt encoded in %.2f s", Date().timeIntervalSince(encodeStart)))
        let denoiseStart = Date()
        let image: RGBImage
        do {
            image = try pipeline.generate(p, conditioning: conditioning, isCancelled: { Interrupt.requested }) { step in
                let elapsed = Date().timeIntervalSince(denoiseStart)
                let perStep = elapsed / Double(step.index + 1)
                log(String(format: "step %d/%d  %.2f s/step  ETA %.0f s", step.index + 1, step.total, perStep,
                           perStep * Double(step.total - step.index - 1)))
            }
        } catch is CancellationError {
            log("cancelled")
            throw ExitCode(130)
        }
        let seconds = Date().timeIntervalSince(started)
        let metadata = ImageMetadata(parameters: p, model: URL(fileURLWithPath: model).lastPathComponent, t5: pipeline.promptEncoder.hasT5,
                                     shift: pipeline.schedulerConfig.shift, precision: precision.rawValue, seconds: seconds)
        try PNGFile.write(image, text: metadata.pngText, to: target)
        print(target)
        log(String(format: "done in %.1f s", seconds))
    }

    /// The requested path, or sd3-SEED.png; never an existing file (a numeric suffix is added instead).
    private func outputPath(seed: UInt64) throws -> String {
        let requested = output ?? "sd3-\(seed).png"
        guard FileManager.default.fileExists(atPath: requested) else { return requested }
        let url = URL(fileURLWithPath: requested)
        let stem = url.deletingPathExtension().path, ext = url.pathExtension.isEmpty ? "png" : url.pathExtension
        for n in 1... {
            let candidate = "\(stem)-\(n).\(ext)"
            if !FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        fatalError("unreachable")
    }
}

/// Progress and messages go to standard error so standard output carries only results.
func log(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Ctrl-C asks the running generation to stop between transformer blocks.
enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0
    static var requested: Bool { flag != 0 }
    static func install() {
        signal(SIGINT) { _ in Interrupt.flag = 1 }
    }
}
