import Foundation

extension Fuzz {
    /// The slowest case's time confirmed: the fastest of three more runs of its input. A machine that stalls for a
    /// moment (other builds, page reclaim) makes one run slow, a superlinear parser makes every run slow.
    public static func confirmedSeconds(_ slowest: Slowest, _ body: ([UInt8]) -> Void) -> Double {
        (0..<3).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            body(slowest.input)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }.min() ?? slowest.seconds
    }
}
