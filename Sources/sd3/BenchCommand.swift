import ArgumentParser
import Foundation
import Tensors

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engine's speed (random inputs, no files).",
        discussion: "The matmul component times y = x·Wᵀ, x [M, K], W [N, K] (a linear layer), for each backend and precision; "
            + "4096×1536×6144 is SD3 Medium's MLP up-projection at 1024².")

    enum Component: String, ExpressibleByArgument, CaseIterable { case matmul }
    enum BackendChoice: String, ExpressibleByArgument, CaseIterable { case all, onednn, openblas }
    enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable { case all, fp32, bf16 }

    @Option(help: "What to measure: \(Component.allCases.map(\.rawValue).joined(separator: ", ")).")
    var component: Component = .matmul
    @Option(help: "Backend: all, onednn or openblas.") var backend: BackendChoice = .all
    @Option(help: "Precision: all, fp32 or bf16.") var precision: PrecisionChoice = .all
    @Option(help: "Rows of x (tokens).") var m = 4096
    @Option(help: "Input features.") var k = 1536
    @Option(help: "Output features.") var n = 6144
    @Option(help: "Timed repetitions; the minimum is reported.") var `repeat`: Int = 5
    @Option(help: "Engine threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "End with one JSON object with the results.") var json = false

    func validate() throws {
        guard m > 0, k > 0, n > 0 else { throw ValidationError("--m, --k and --n must be positive") }
        guard (1...1000).contains(`repeat`) else { throw ValidationError("--repeat must be between 1 and 1000") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        let kinds: [BackendKind] = backend == .all ? [.oneDNN, .openBLAS] : [backend == .onednn ? .oneDNN : .openBLAS]
        let precisions: [Precision] = precision == .all ? [.fp32, .bf16] : [precision == .fp32 ? .fp32 : .bf16]
        var random = BenchRandom(seed: 1)
        let x = Tensor(shape: [m, k], data: (0..<m * k).map { _ in random.next() })
        let w = Tensor(shape: [n, k], data: (0..<n * k).map { _ in random.next() * 0.05 })
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        print("matmul \(m)×\(k)×\(n) (M×K×N), \(threads) thread\(threads == 1 ? "" : "s"), \(`repeat`) repeats, oneDNN \(OneDNNBackend.version) on \(OneDNNBackend.instructionSet)")
        var results: [[String: Any]] = []
        for kind in kinds {
            let compute = try Compute(backend: kind, threads: threads)
            for p in precisions {
                let weight = Weight(w, precision: p)
                _ = compute.linear(x, weight)  // warm-up: primitive creation, first-touch of memory
                var best = Double.infinity
                for _ in 0..<`repeat` {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = compute.linear(x, weight)
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                let note = p == .bf16 && !nativeBF16(compute) ? " (bf16 operands widened to fp32: no bf16 kernels on this CPU)" : ""
                print("  " + kind.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0) + " " + p.rawValue + String(format: "  %8.1f GFLOP/s  %.4f s", flops / best / 1e9, best) + note)
                var result: [String: Any] = ["backend": kind.rawValue, "precision": p.rawValue,
                                             "seconds_per_forward": best, "gflops": flops / best / 1e9]
                if p == .bf16 { result["native_bf16"] = nativeBF16(compute) }
                results.append(result)
            }
        }
        if json {
            var object: [String: Any] = ["component": "matmul", "m": m, "k": k, "n": n, "threads": threads,
                                         "peak_rss_bytes": peakResidentBytes(), "results": results]
            if results.count == 1 { object.merge(results[0]) { a, _ in a } }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    private func nativeBF16(_ compute: Compute) -> Bool {
        (compute.backend as? OneDNNBackend)?.nativeBF16 ?? false
    }
}

func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

/// Uniform values in [-1, 1) from SplitMix64; benchmark inputs need no torch parity.
struct BenchRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(Double(z >> 11) * 0x1p-53 * 2 - 1)
    }
}
