import ArgumentParser
import Foundation
import ImageMetadata
import SD3
import Tensors

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engine's speed at real model sizes (random weights made in memory, no files).",
        discussion: """
            matmul times y = x·Wᵀ, x [M, K], W [N, K] (a linear layer) for each backend and precision; \
            4096×1536×6144 is SD3 Medium's MLP up-projection at 1024². attention times one joint attention of the \
            MMDiT (--config) over the image and text tokens of --width × --height, batch 2. t5, clip-l and clip-g time one \
            forward of SD3's text encoders (T5-XXL over 256 tokens, the CLIPs over 77 unless --text-tokens); mmdit one \
            transformer forward (--config, --width, --height, batch 2 as with guidance); vae-decode and vae-encode \
            SD3's VAE at --width × --height; taesd-decode TAESD3's decoder (a preview or a draft) at --width × --height; \
            train-step `sd3 train-lora`'s optimizer step on the MMDiT (--config, --width, --height, --batch 1, 154 text \
            tokens = 77 CLIP + 77 T5 as the script's --max_sequence_length 77, --rank 16, checkpointing): its seconds, \
            the LoRA's loss and peak RSS (scripts/bench/train_step_torch.py is the same step in PyTorch).
            """)

    enum Component: String, ExpressibleByArgument, CaseIterable {
        case matmul, attention, t5, mmdit
        case clipL = "clip-l", clipG = "clip-g"
        case vaeDecode = "vae-decode", vaeEncode = "vae-encode"
        case taesdDecode = "taesd-decode"
        case pipeline
        case t5Int8Quality = "t5-int8-quality"
        case trainStep = "train-step"
    }
    enum ModelConfig: String, ExpressibleByArgument, CaseIterable {
        case sd3Medium = "sd3-medium", sd35Medium = "sd35-medium", sd35Large = "sd35-large"
        var transformer: SD3TransformerConfig {
            switch self {
            case .sd3Medium: return .sd3Medium
            case .sd35Medium: return .sd35Medium
            case .sd35Large: return .sd35Large
            }
        }
    }

    enum BackendChoice: String, ExpressibleByArgument, CaseIterable { case all, onednn, openblas }
    enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable { case all, fp32, bf16, int8 }

    @Option(help: "What to measure: \(Component.allCases.map(\.rawValue).joined(separator: ", ")).")
    var component: Component = .matmul
    @Option(help: "Backend: all, onednn or openblas (models: onednn unless given).") var backend: BackendChoice?
    @Option(help: "Precision: all, fp32 or bf16 (matmul: all; models: bf16 unless given); int8 (weight-only, per-row scales) for matmul and t5.")
    var precision: PrecisionChoice?
    @Option(help: "matmul: rows of x (tokens).") var m = 4096
    @Option(help: "matmul: input features.") var k = 1536
    @Option(help: "matmul: output features.") var n = 6144
    @Option(help: "Text tokens per prompt (t5: 256, clip: 77, mmdit: 333 = 77 CLIP + 256 T5).") var textTokens: Int?
    @Option(help: "Prompts per forward (mmdit: 2, guidance's [uncond, cond]; encoders: 1).") var batch: Int?
    @Option(help: "mmdit: the model size.") var config: ModelConfig = .sd3Medium
    @Option(help: "mmdit: image width in pixels.") var width = 256
    @Option(help: "mmdit: image height in pixels.") var height = 256
    @Option(help: "pipeline: a diffusers SD3 folder (scripts/bench/make_random_sd3.py writes a real-size random one).") var model: String?
    @Option(help: "pipeline: denoising steps.") var steps = 28
    @Option(help: "pipeline: guidance scale (≤ 1 runs no unconditional pass: the few-step models' 0).") var guidance = 7.0
    @Option(help: "pipeline: scheduler, euler or flash (Flash-SD3's).") var scheduler: SchedulerKind = .euler
    @Option(help: "pipeline: T5 as on (the precision's format), int8 or off.") var t5: T5Mode = .on
    @Option(help: "train-step: the LoRA's rank (alpha = rank, as the script).") var rank = 16
    @Flag(inversion: .prefixedNo, help: "train-step: gradient checkpointing (default on).") var checkpointing = true
    @Option(help: "Timed repetitions; the minimum is reported.") var `repeat`: Int = 3
    @Option(help: "Untimed runs first (primitive creation, first touch of memory).") var warmup: Int = 1
    @Option(help: "Engine threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "End with one JSON object with the results.") var json = false

    func validate() throws {
        guard (1...1024).contains(rank) else { throw ValidationError("--rank must be between 1 and 1024") }
        guard m > 0, k > 0, n > 0 else { throw ValidationError("--m, --k and --n must be positive") }
        guard (1...1000).contains(`repeat`) else { throw ValidationError("--repeat must be between 1 and 1000") }
        guard (0...100).contains(warmup) else { throw ValidationError("--warmup must be between 0 and 100") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
        if let batch { guard (1...(component == .t5Int8Quality ? 1000 : 64)).contains(batch) else { throw ValidationError("--batch must be between 1 and 64") } }
        guard width > 0, height > 0, width % 16 == 0, height % 16 == 0 else { throw ValidationError("--width and --height must be positive multiples of 16") }
        if precision == .int8 { guard [.matmul, .t5, .t5Int8Quality].contains(component) else { throw ValidationError("--precision int8 is for matmul and t5 only") } }
        if let textTokens {
            let limit = [.t5, .t5Int8Quality].contains(component) ? 512 : [.mmdit, .attention, .trainStep].contains(component) ? 589 : 77
            guard (1...limit).contains(textTokens) else { throw ValidationError("--text-tokens must be between 1 and \(limit) for \(component.rawValue)") }
        }
    }

    func run() throws {
        let isMatmul = component == .matmul
        let backendChoice = backend ?? (isMatmul ? .all : .onednn)
        let precisionChoice = precision ?? (isMatmul ? .all : .bf16)
        let kinds: [BackendKind] = backendChoice == .all ? [.oneDNN, .openBLAS] : [backendChoice == .onednn ? .oneDNN : .openBLAS]
        let precisions: [WeightFormat] = precisionChoice == .all ? [.fp32, .bf16] : [WeightFormat(rawValue: precisionChoice.rawValue)!]
        if component == .t5Int8Quality { return try t5Int8Quality() }
        if component == .pipeline { return try pipeline(format: precisions[0]) }
        if component == .trainStep { return try trainStep(format: precisions[0]) }
        let native = (try? OneDNNBackend(threads: 1))?.nativeBF16 ?? false
        print("\(headline()), \(threads) thread\(threads == 1 ? "" : "s"), \(`repeat`) repeats; \(InstructionSet.summary(nativeBF16: native))")
        var results: [[String: Any]] = []
        for kind in kinds {
            let compute = try Compute(backend: kind, threads: threads)
            for p in precisions {
                let (seconds, flops, setup) = try measure(compute: compute, format: p)
                let native = p != .bf16 || ((compute.backend as? OneDNNBackend)?.nativeBF16 ?? false)
                let note = native ? "" : " (bf16 operands widened to fp32: no bf16 kernels on this CPU)"
                let setupNote = setup.map { String(format: ", weights made in %.1f s", $0) } ?? ""
                print("  " + kind.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0) + " " + p.rawValue
                      + String(format: "  %8.1f GFLOP/s  %.4f s", flops / seconds / 1e9, seconds) + note + setupNote
                      + ", peak RSS \(String(format: "%.2f GB", Double(peakResidentBytes()) / 1e9))"
                      + ", \(BenchCounters.pageFaults) minor page faults per run")
                var result: [String: Any] = ["backend": kind.rawValue, "precision": p.rawValue,
                                             "seconds_per_forward": seconds, "gflops": flops / seconds / 1e9,
                                             "minor_page_faults_per_run": BenchCounters.pageFaults]
                if p == .bf16 { result["native_bf16"] = native }
                if p == .int8 { result["note"] = "weight-only int8, dequantized to fp32 per tile of rows" }
                if isMatmul && p == .bf16 && kind == .oneDNN && native {
                    let perCall = try perCallMatmul(compute: compute)
                    print("  " + "".padding(toLength: 9, withPad: " ", startingAt: 0) + " bf16"
                          + String(format: "  %8.1f GFLOP/s  %.4f s", flops / perCall / 1e9, perCall) + " with plain weights (repacked by each call)")
                    result["packed_weights"] = true
                    result["per_call_seconds"] = perCall
                    result["per_call_gflops"] = flops / perCall / 1e9
                }
                results.append(result)
            }
        }
        if json {
            var object: [String: Any] = ["component": component.rawValue, "threads": threads, "kernels_isa": InstructionSet.kernels, "onednn_isa": OneDNNBackend.instructionSet,
                                         "peak_rss_bytes": peakResidentBytes(), "results": results]
            if isMatmul { object.merge(["m": m, "k": k, "n": n]) { a, _ in a } }
            else { object.merge(["batch": prompts]) { a, _ in a } }
            if [.t5, .clipL, .clipG, .mmdit].contains(component) { object.merge(["text_tokens": tokens]) { a, _ in a } }
            if [.mmdit, .attention, .vaeDecode, .vaeEncode, .taesdDecode].contains(component) { object.merge(["width": width, "height": height]) { a, _ in a } }
            if component == .mmdit { object.merge(["config": config.rawValue]) { a, _ in a } }
            if results.count == 1 { object.merge(results[0]) { a, _ in a } }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    var tokens: Int {
        textTokens ?? ([.t5, .t5Int8Quality].contains(component) ? 256 : [.mmdit, .attention].contains(component) ? 333 : component == .trainStep ? 154 : 77)
    }
    var prompts: Int { batch ?? ([.mmdit, .attention].contains(component) ? 2 : component == .t5Int8Quality ? 100 : 1) }

    func headline() -> String {
        switch component {
        case .matmul: return "matmul \(m)×\(k)×\(n) (M×K×N)"
        case .t5: return "T5-XXL encoder, \(prompts)×\(tokens) tokens"
        case .clipL: return "CLIP-L text encoder, \(prompts)×\(tokens) tokens"
        case .clipG: return "CLIP-G text encoder, \(prompts)×\(tokens) tokens"
        case .attention: return "joint attention \(config.rawValue), \(width)×\(height), batch \(prompts), \(tokens) text tokens"
        case .mmdit: return "MMDiT \(config.rawValue), \(width)×\(height), batch \(prompts), \(tokens) text tokens"
        case .vaeDecode, .vaeEncode: return "VAE \(component == .vaeDecode ? "decoder" : "encoder"), \(width)×\(height), batch \(prompts)"
        case .taesdDecode: return "TAESD3 decoder (64 channels, random weights), \(width)×\(height), batch \(prompts)"
        case .pipeline: return "whole pipeline, \(model ?? "?"), \(width)×\(height), \(steps) steps, guidance \(ImageMetadata.number(guidance)), \(scheduler.rawValue), T5 \(t5.rawValue), staged loading"
        case .t5Int8Quality: return "T5-XXL int8 against bf16, \(prompts) prompts × \(tokens) tokens"
        case .trainStep: return "LoRA training step \(config.rawValue), \(width)×\(height), batch \(prompts), \(tokens) text tokens"
        }
    }

    /// Best seconds over the repeats, the FLOPs of one forward, and the seconds spent making weights.
    private func measure(compute: Compute, format: WeightFormat) throws -> (Double, Double, Double?) {
        let precision: Precision = format == .bf16 ? .bf16 : .fp32
        let ids = (0..<prompts).map { b in (0..<tokens).map { ($0 * 7919 + b * 104729) % 32000 } }
        switch component {
        case .matmul:
            let x = compute.randomUniform([m, k], seed: 1)
            let weight = Weight(compute.randomUniform([n, k], seed: 2, scale: 0.05), format: format)
            return (time(compute.linear(x, weight)), 2.0 * Double(m) * Double(n) * Double(k), nil)
        case .t5:
            let c = T5Config.t5XXL
            let start = DispatchTime.now().uptimeNanoseconds
            let model = try T5EncoderModel(config: c, weights: RandomWeights(compute: compute), precision: precision, int8: format == .int8)
            let setup = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let linear = Double(c.numLayers) * (4.0 * Double(c.dModel * c.numHeads * c.dKv) + 3.0 * Double(c.dModel * c.dFf))
            let attention = Double(c.numLayers) * 4.0 * Double(tokens * tokens * c.numHeads * c.dKv)
            return (time(model(ids, compute: compute)), Double(prompts) * (2.0 * linear * Double(tokens) + attention), setup)
        case .mmdit:
            let c = config.transformer
            let start = DispatchTime.now().uptimeNanoseconds
            let model = try SD3Transformer2DModel(config: c, weights: RandomWeights(compute: compute), precision: precision)
            let (h, w) = (height / 8, width / 8)
            model.prepareWeights(rows: prompts * (h / c.patchSize) * (w / c.patchSize), compute: compute)
            let setup = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let latents = compute.randomUniform([prompts, c.inChannels, h, w], seed: 3)
            let text = compute.randomUniform([prompts, tokens, c.jointAttentionDim], seed: 4)
            let pooled = compute.randomUniform([prompts, c.pooledProjectionDim], seed: 5)
            let timesteps = [Float](repeating: 500, count: prompts)
            // Per sample: 24·D² per token for q, k, v, out and the 4× MLP (both streams), 4·S²·D for attention
            // over S = N + T tokens, plus the context embedder; the dual-attention blocks add 8·D²·N + 4·N²·D.
            let d = Double(c.width), n = Double((h / c.patchSize) * (w / c.patchSize)), t = Double(tokens), all = n + t
            var perSample = Double(c.numLayers) * (24 * d * d * all + 4 * all * all * d) + 2 * t * Double(c.jointAttentionDim) * d
            perSample += Double(c.dualAttentionLayers.count) * (8 * d * d * n + 4 * n * n * d)
            let seconds = time(try! model(latents, text: text, pooled: pooled, timesteps: timesteps, compute: compute))
            return (seconds, Double(prompts) * perSample, setup)
        case .attention:
            let c = config.transformer, d = c.width
            let all = (height / 16) * (width / 16) + tokens
            let q = compute.randomUniform([prompts, all, d], seed: 8), k = compute.randomUniform([prompts, all, d], seed: 9)
            let v = compute.randomUniform([prompts, all, d], seed: 10)
            let seconds = time(compute.attention(query: q, key: k, value: v, heads: c.numAttentionHeads, operands: precision.operandType))
            return (seconds, 4 * Double(prompts) * Double(all) * Double(all) * Double(d), nil)
        case .pipeline, .t5Int8Quality, .trainStep:
            preconditionFailure("\(component.rawValue) is measured by its own function")
        case .vaeDecode, .vaeEncode:
            let start = DispatchTime.now().uptimeNanoseconds
            let vae = try AutoencoderKL(config: .sd3, weights: RandomWeights(compute: compute), precision: precision,
                                        withEncoder: component == .vaeEncode)
            let setup = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let flops = Self.vaeFlops(width: width, height: height, decoder: component == .vaeDecode) * Double(prompts)
            if component == .vaeDecode {
                let latents = compute.randomUniform([prompts, 16, height / 8, width / 8], seed: 6)
                return (time(try! vae.decode(latents, compute: compute)), flops, setup)
            }
            let images = compute.randomUniform([prompts, 3, height, width], seed: 7)
            return (time(try! vae.encode(images, compute: compute)), flops, setup)
        case .taesdDecode:
            let start = DispatchTime.now().uptimeNanoseconds
            let config = AutoencoderTinyConfig.taesd3()
            let taesd = try AutoencoderTiny(config: config, encoder: nil, decoder: (RandomWeights(compute: compute).scope("decoder.layers"), 0),
                                            precision: precision, source: "random weights")
            let setup = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let latents = compute.randomUniform([prompts, 16, height / 8, width / 8], seed: 6)
            _ = try taesd.decode(latents, compute: compute)
            return (time((try? taesd.decode(latents, compute: compute)) as Tensor?), Self.taesdFlops(width: width, height: height) * Double(prompts), setup)
        case .clipL, .clipG:
            let c = component == .clipL ? CLIPTextConfig.clipL : CLIPTextConfig.clipG
            let start = DispatchTime.now().uptimeNanoseconds
            let model = try CLIPTextModelWithProjection(config: c, weights: RandomWeights(compute: compute), precision: precision)
            let setup = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let clipIds = ids.map { row in row.map { $0 % (c.vocabSize - 1) } }
            let linear = Double(c.numHiddenLayers) * (4.0 * Double(c.hiddenSize * c.hiddenSize) + 2.0 * Double(c.hiddenSize * c.intermediateSize))
            let attention = Double(c.numHiddenLayers) * 4.0 * Double(tokens * tokens * c.hiddenSize)
            return (time(model(clipIds, compute: compute)), Double(prompts) * (2.0 * linear * Double(tokens) + attention), setup)
        }
    }

    /// The bf16 matmul with the weight in its plain [N, K] rows, as a product without `Compute.linear`'s packing sees it.
    private func perCallMatmul(compute: Compute) throws -> Double {
        let x = compute.randomUniform([m, k], seed: 1)
        let weight = Weight(compute.randomUniform([n, k], seed: 2, scale: 0.05), format: .bf16)
        let rounded = x.data.map(HalfPrecision.bf16)
        let d = GemmDescriptor(m: m, n: n, k: k, transposeB: true, operandType: .bf16)
        var out = [Float](repeating: 0, count: m * n)
        return time(rounded.withUnsafeBytes { a in
            weight.withOperand { b in out.withUnsafeMutableBufferPointer { compute.backend.gemm(d, a: a.baseAddress!, b: b, bias: nil, c: $0.baseAddress!) } }
        })
    }

    /// FLOPs of SD3's VAE decoder or encoder at one image size: its 3×3 and 1×1 convolutions (2·k²·Cin·Cout per
    /// output pixel) and the mid-block attention (4·N²·C over N = latent pixels); norms and activations left out.
    static func vaeFlops(width: Int, height: Int, decoder: Bool) -> Double {
        var total = 0.0
        func conv(_ cin: Int, _ cout: Int, _ pixels: Int, _ k: Int = 3) { total += 2 * Double(k * k * cin * cout) * Double(pixels) }
        func resnet(_ cin: Int, _ cout: Int, _ pixels: Int) {
            conv(cin, cout, pixels)
            conv(cout, cout, pixels)
            if cin != cout { conv(cin, cout, pixels, 1) }
        }
        let latent = (width / 8) * (height / 8)
        let channels = [128, 256, 512, 512]
        func mid() {
            resnet(512, 512, latent)
            total += 4 * Double(latent * latent * 512) + 8 * Double(latent * 512 * 512)
            resnet(512, 512, latent)
        }
        if decoder {
            conv(16, 512, latent)
            mid()
            var pixels = latent, previous = 512
            for (i, c) in channels.reversed().enumerated() {
                for j in 0..<3 { resnet(j == 0 ? previous : c, c, pixels) }
                previous = c
                if i < 3 { pixels *= 4; conv(c, c, pixels) }
            }
            conv(128, 3, pixels)
        } else {
            var pixels = width * height, previous = 128
            conv(3, 128, pixels)
            for (i, c) in channels.enumerated() {
                for j in 0..<2 { resnet(j == 0 ? previous : c, c, pixels) }
                previous = c
                if i < 3 { pixels /= 4; conv(c, c, pixels) }
            }
            mid()
            conv(512, 32, latent)
        }
        return total
    }

    /// FLOPs of TAESD3's decoder (DecoderTiny, 64 channels, blocks 3-3-3-1) at one image size: its 3×3 convolutions only.
    static func taesdFlops(width: Int, height: Int) -> Double {
        let width64 = 2 * 9 * 64 * 64.0
        var pixels = Double((width / 8) * (height / 8))
        var total = 2 * 9 * 16 * 64 * pixels
        for (level, blocks) in [3, 3, 3, 1].enumerated() {
            total += Double(blocks * 3) * width64 * pixels
            if level < 3 {
                pixels *= 4
                total += width64 * pixels
            }
        }
        return total + 2 * 9 * 64 * 3 * pixels
    }

    /// `warmup` untimed runs (primitive creation, first touch), then the best of `repeat` timed runs.
    /// The warm-up as a first denoising step, the timed runs inside the engine's freed-memory reuse as the later
    /// steps; the fewest minor page faults of a timed run
    /// go to `BenchCounters.pageFaults`.
    private func time<T>(_ body: @autoclosure () -> T) -> Double {
        for _ in 0..<warmup { _ = body() }
        return FreedMemoryReuse.reusingFreedMemory {
            var best = Double.infinity
            BenchCounters.pageFaults = .max
            for _ in 0..<`repeat` {
                let (start, faults) = (DispatchTime.now().uptimeNanoseconds, minorPageFaults())
                _ = body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                BenchCounters.pageFaults = min(BenchCounters.pageFaults, minorPageFaults() - faults)
            }
            return best
        }
    }
}

enum BenchCounters {
    nonisolated(unsafe) static var pageFaults = 0
}

func minorPageFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}

func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

extension T5Mode: ExpressibleByArgument {}
