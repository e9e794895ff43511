import CDNNL

/// Splits `0..<count` into at most `threads` contiguous ranges and runs `body` on each, in parallel on the
/// OpenMP threads oneDNN also uses (one pool for the whole engine: a second pool would spin against
/// OpenMP's waiting threads and slow both). Small jobs (`count < minimumPerThread · 2`) stay on the
/// calling thread so short loops do not pay the fork cost.
@inline(__always)
public func parallelRanges(_ count: Int, threads: Int, minimumPerThread: Int = 4096,
                    _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, count / max(1, minimumPerThread)))
    if parts <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { escapable in
        var job = ParallelJob(count: count, parts: parts, body: escapable)
        withUnsafeMutablePointer(to: &job) { pointer in
            GOMP_parallel({ context in
                let job = context!.assumingMemoryBound(to: ParallelJob.self)
                // OpenMP may give fewer threads than asked (nested regions run on one): each thread takes
                // every n-th part so all parts run whatever the team size.
                let (count, parts) = (job.pointee.count, job.pointee.parts)
                for part in stride(from: Int(omp_get_thread_num()), to: parts, by: max(1, Int(omp_get_num_threads()))) {
                    job.pointee.body(count * part / parts..<count * (part + 1) / parts)
                }
            }, pointer, UInt32(parts), 0)
        }
    }
}

private struct ParallelJob {
    let count: Int
    let parts: Int
    let body: (Range<Int>) -> Void
}

/// Wraps a value whose concurrent use the caller guarantees to be safe (disjoint writes).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
