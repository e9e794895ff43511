import CDNNL
import Foundation
import Kernels

/// Which instruction set the engine's loops run: our kernels (Kernels, chosen from cpuid at start-up) and oneDNN's.
/// SD3_MAX_ISA (baseline, avx2, avx512, avx512_bf16) caps both, so one variable makes an AVX-512 machine run the
/// AVX2 code paths; ONEDNN_MAX_CPU_ISA, when set, still decides for oneDNN.
public enum InstructionSet {
    public static let levels = ["baseline", "avx2", "avx512", "avx512_bf16"]

    /// The value of SD3_MAX_ISA when it names no level.
    public static var overrideError: String? { sd3k_isa_override_error().map { String(cString: $0) } }

    /// Our kernels' level in use, e.g. "AVX-512 with bf16".
    public static var kernels: String { String(cString: sd3k_isa_name(sd3k_isa())) }

    /// Applies SD3_MAX_ISA to oneDNN before its first kernel is made (it reads its cap once).
    static let capOneDNN: Void = {
        guard ProcessInfo.processInfo.environment["ONEDNN_MAX_CPU_ISA"] == nil,
              let value = ProcessInfo.processInfo.environment["SD3_MAX_ISA"]?.lowercased(), let level = levels.firstIndex(of: value)
        else { return }
        let caps = [dnnl_cpu_isa_sse41, dnnl_cpu_isa_avx2, dnnl_cpu_isa_avx512_core, dnnl_cpu_isa_avx512_core_bf16]
        _ = dnnl_set_max_cpu_isa(caps[level])
    }()

    /// One line for `sd3 --version` and `sd3 bench`: both instruction sets and how bf16 products run.
    public static func summary(nativeBF16: Bool) -> String {
        "kernels \(kernels), oneDNN \(OneDNNBackend.version) \(OneDNNBackend.instructionSet), bf16 products "
            + (nativeBF16 ? "native" : "widened to fp32 (no bf16 kernels at this instruction set)")
    }
}
