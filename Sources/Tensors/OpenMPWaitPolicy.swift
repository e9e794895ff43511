#if canImport(Glibc)
import Glibc
#endif

/// libgomp's idle threads spin by default (OMP_WAIT_POLICY unset), and it reads the policy once, when the
/// library loads — before any of our code runs. Spinning costs the engine dearly whenever anything else wants
/// the cores: one SD3 Medium MMDiT forward (256², batch 2, fp32) measured 49–60 s spinning against 13.9 s
/// passive on a 2-core machine with a build running beside it; and even alone, spinning threads slowed the
/// single-threaded loading of a 512² generation (T5 load 67.6 s against 43.4 s passive on a 2-core Zen 5) by more
/// than the ~5% they gain in the denoising loop. So the command-line tool restarts itself once with
/// OMP_WAIT_POLICY=PASSIVE unless the user chose a policy (ACTIVE suits a benchmark of the transformer alone).
public enum OpenMPWaitPolicy {
    public static func restartPassiveIfUnset() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        // Returns only when exec fails; the process then simply goes on with libgomp's default policy.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
