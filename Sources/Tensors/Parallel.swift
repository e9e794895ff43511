import Dispatch

/// Splits `0..<count` into at most `threads` contiguous ranges and runs `body` on each,
/// in parallel when there is more than one. Small jobs (`count < minimumPerThread · 2`) stay on
/// the calling thread so short loops do not pay the dispatch cost.
@inline(__always)
func parallelRanges(_ count: Int, threads: Int, minimumPerThread: Int = 4096,
                    _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, count / max(1, minimumPerThread)))
    if parts <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { escapable in
        let job = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lower = count * part / parts
            let upper = count * (part + 1) / parts
            job.value(lower..<upper)
        }
    }
}

/// Wraps a value whose concurrent use the caller guarantees to be safe (disjoint writes).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
