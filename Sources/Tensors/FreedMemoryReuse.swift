import Kernels
import Synchronization

/// Keeps the memory of freed tensors in the process for the next op instead of giving it back to the kernel.
/// Every op returns a fresh tensor; glibc serves allocations over its mmap threshold (128 KiB to 32 MiB) with new
/// zeroed pages and unmaps them on free, so each denoising step faulted in and cleared gigabytes (a fifth of a
/// 512² forward). Inside `reusingFreedMemory` nothing is mmapped or trimmed: freed blocks stay in the heap and the
/// next step's tensors, the same sizes in the same order, reuse them, so a step after the first touches no new page.
/// When the last scope ends, the free memory is returned (`malloc_trim`), so a later phase (the VAE, another
/// model) starts from what is really live.
public enum FreedMemoryReuse {
    private static let depth = Mutex(0)

    public static func reusingFreedMemory<R>(_ body: () throws -> R) rethrows -> R {
        enter()
        defer { leave() }
        return try body()
    }

    private static func enter() {
        depth.withLock { depth in
            if depth == 0 { configure(reuse: true) }
            depth += 1
        }
    }

    private static func leave() {
        depth.withLock { depth in
            depth -= 1
            if depth == 0 { configure(reuse: false) }
        }
    }

    private static func configure(reuse: Bool) { sd3k_keep_freed_memory(reuse ? 1 : 0) }
}
