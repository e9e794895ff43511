#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// libgomp reads its wait policy once, when the library loads — before any of our code runs — so the command-line
/// tool restarts itself once with a policy unless the user chose one (OMP_WAIT_POLICY).
///
/// PASSIVE (idle threads sleep) for the studio and every command, except `generate` and `bench` started on an idle
/// machine, which get ACTIVE (idle threads spin until the process ends). Measured on a 2-core Zen 5, SD3 Medium
/// MMDiT forward, 256², bf16: ACTIVE 2.37–2.40 s, PASSIVE 2.51–2.59 s (a forward runs ~700 parallel regions, and
/// waking sleeping threads for each costs ~5%); but spinning threads take the cores from anything else: with a build
/// running beside it the same forward (fp32) took 49–60 s spinning against 13.9 s passive, and a studio would spin
/// while the user types. So only a batch command on a quiet machine spins.
public enum OpenMPWaitPolicy {
    public static func restartIfUnset(arguments: [String]) {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        let batch = arguments.dropFirst().first.map { ["generate", "bench"].contains($0) } ?? false
        // The count flickers (a parent shell, a kernel thread): idle when any of five looks 2 ms apart saw only us.
        let idle = (0..<5).contains { look in
            if look > 0 { usleep(2000) }
            guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return false }
            return isIdle(procStat: stat, ownRunnable: ownRunnableThreads())
        }
        setenv("OMP_WAIT_POLICY", batch && idle ? "ACTIVE" : "PASSIVE", 1)
        // Returns only when exec fails; the process then simply goes on with libgomp's default policy.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// Whether no other process's task is runnable: /proc/stat's `procs_running` counts ours too (the reader, and
    /// OpenBLAS's threads, which spin for a while after they start).
    public static func isIdle(procStat: String, ownRunnable: Int) -> Bool {
        for line in procStat.split(separator: "\n") where line.hasPrefix("procs_running ") {
            return Int(line.dropFirst("procs_running ".count).trimmingCharacters(in: .whitespaces)).map { $0 <= max(1, ownRunnable) } ?? false
        }
        return false
    }

    /// Our threads in state R (/proc/self/task/*/stat: the state follows the parenthesised name).
    static func ownRunnableThreads() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("R")
        }.count
    }
}
