import ArgumentParser
import Foundation
import ImageIO
import SD3
import Tensors

extension BenchCommand {
    /// One whole txt2img run with staged loading: the time of every phase and the process's peak RSS
    /// (one configuration per process, since the peak is the process's).
    func pipeline(format: WeightFormat) throws {
        guard let model else { throw ValidationError("--component pipeline needs --model DIR (scripts/bench/make_random_sd3.py writes a real-size one)") }
        guard format != .int8 else { throw ValidationError("--precision int8 is for matmul and t5; use --t5 int8 for the pipeline") }
        var options = LoadOptions()
        options.precision = format == .bf16 ? .bf16 : .fp32
        options.t5 = t5
        (options.staged, options.withVAEEncoder, options.threads) = (true, false, threads)
        print(headline() + ", \(format.rawValue), \(threads) thread\(threads == 1 ? "" : "s")")
        let started = Date()
        let pipeline = try StableDiffusion3Pipeline(path: model, options: options)
        var p = GenerationParameters(prompt: "a photograph of an astronaut riding a horse on the moon, detailed, 35 mm")
        (p.width, p.height, p.steps, p.seed, p.guidanceScale, p.scheduler) = (width, height, steps, 1, guidance, scheduler)
        if let problem = GenerationLimits.problem("--guidance", guidance, GenerationLimits.guidance) { throw ValidationError(problem) }
        p.maxSequenceLength = textTokens ?? 256
        var phases: [(String, Double)] = [("open model", Date().timeIntervalSince(started))]
        _ = try pipeline.generate(p, onPhase: { name, seconds in
            phases.append((name, seconds))
            print("  " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%8.2f s", seconds)
                  + String(format: "   RSS now %.2f GB", Double(residentBytes()) / 1e9))
        })
        let total = Date().timeIntervalSince(started)
        let denoise = phases.first { $0.0 == "denoise" }?.1 ?? 0
        print(String(format: "  total %.1f s, %.2f s per step, peak RSS %.2f GB", total, denoise / Double(steps), Double(peakResidentBytes()) / 1e9))
        if json {
            let object: [String: Any] = [
                "component": "pipeline", "model": model, "precision": format.rawValue, "t5": t5.rawValue, "width": width,
                "height": height, "steps": steps, "guidance": guidance, "scheduler": scheduler.rawValue, "threads": threads, "seconds_total": total,
                "seconds_per_step": denoise / Double(steps), "peak_rss_bytes": peakResidentBytes(),
                "phases": Dictionary(phases.map { ($0.0, $0.1) }, uniquingKeysWith: +)]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    /// T5-XXL (real size, random weights) in bf16 and with int8 projections on the same token ids: the cosine
    /// similarity of each prompt's embeddings [L, 4096]. The models are built one after the other (never both
    /// in memory) and all prompts run as one batch, so int8's dequantization is paid once per weight.
    func t5Int8Quality() throws {
        print(headline() + ", \(threads) thread\(threads == 1 ? "" : "s")")
        let compute = try Compute(backend: .oneDNN, threads: threads)
        // Prompt-like ids: a few hundred distinct words, then </s> (1) and padding (0) as the tokenizer gives.
        let ids = (0..<prompts).map { b -> [Int] in
            let words = 5 + (b * 7) % min(40, tokens - 1)
            return (0..<tokens).map { i in i < words ? 3 + (i * 7919 + b * 104_729) % 32_000 : i == words ? 1 : 0 }
        }
        func encode(int8: Bool) throws -> (Tensor, Double) {
            let model = try T5EncoderModel(config: .t5XXL, weights: RandomWeights(compute: compute), precision: .bf16, int8: int8)
            let start = Date()
            let out = model(ids, compute: compute)
            return (out, Date().timeIntervalSince(start))
        }
        let (reference, bf16Seconds) = try encode(int8: false)
        print(String(format: "  bf16: %.1f s, peak RSS %.2f GB", bf16Seconds, Double(peakResidentBytes()) / 1e9))
        let (quantized, int8Seconds) = try encode(int8: true)
        print(String(format: "  int8: %.1f s", int8Seconds))
        let width = reference.count / prompts
        let cosines = (0..<prompts).map { b in
            cosine(reference.data[b * width..<(b + 1) * width], quantized.data[b * width..<(b + 1) * width])
        }
        let worst = cosines.min() ?? 0, mean = cosines.reduce(0, +) / Double(cosines.count)
        print(String(format: "  cosine similarity of prompt embeddings: min %.6f, mean %.6f over %d prompts (target ≥ 0.999)", worst, mean, prompts))
        if json {
            let object: [String: Any] = ["component": component.rawValue, "prompts": prompts, "text_tokens": tokens,
                                         "cosine_min": worst, "cosine_mean": mean, "seconds_bf16": bf16Seconds,
                                         "seconds_int8": int8Seconds, "peak_rss_bytes": peakResidentBytes()]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}

/// cos(a, b) in Double.
func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var (dot, aa, bb) = (0.0, 0.0, 0.0)
    for (x, y) in zip(a, b) { dot += Double(x) * Double(y); aa += Double(x) * Double(x); bb += Double(y) * Double(y) }
    return dot / max((aa * bb).squareRoot(), .leastNormalMagnitude)
}

/// The process's resident set now (VmRSS in /proc/self/status), in bytes.
func residentBytes() -> Int {
    // /proc files report size 0, so read to the end with read(2) rather than by their size.
    let fd = open("/proc/self/status", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 1 << 16)
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    let status = String(decoding: bytes[0..<max(0, n)], as: UTF8.self)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    // "VmRSS:\t  123456 kB": the number is the second whitespace-separated field.
    let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
    return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * 1024
}

/// `--scheduler euler|flash` for the bench.
extension SchedulerKind: ExpressibleByArgument {}
