#if canImport(Glibc)
import Glibc
#endif

/// libgomp's idle threads spin by default (OMP_WAIT_POLICY unset), and it reads the policy once, when the
/// library loads — before any of our code runs. Spinning costs the engine dearly whenever anything else wants
/// the cores: one SD3 Medium MMDiT forward (256², batch 2, fp32) measured 49–60 s spinning against 13.9 s
/// passive on this 2-core machine with a build running beside it. So the command-line tool restarts itself
/// once with OMP_WAIT_POLICY=PASSIVE unless the user chose a policy.
public enum OpenMPWaitPolicy {
    public static func restartPassiveIfUnset() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        // Returns only when exec fails; the process then simply goes on with libgomp's default policy.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
