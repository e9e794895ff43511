import Foundation

extension Fuzz {
    /// The slowest case's time confirmed: the fastest of three more runs of its input. A machine that stalls for a
    /// moment (other builds, page reclaim) makes one run slow, a superlinear parser makes every run slow.
    public static func confirmedSeconds(_ slowest: Slowest, _ body: ([UInt8]) -> Void) -> Double {
        (0..<3).map { _ in cpuSeconds { body(slowest.input) }.1 }.min() ?? slowest.seconds
    }
}
