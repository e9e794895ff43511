import Foundation
import Testing
@testable import Tensors

/// The call-free exp and tanh against the Double-precision libm functions.
@Suite struct FastMathTests {
    static func lanes(_ values: [Float], _ f: (Float) -> Float) -> [Float] { values.map(f) }

    @Test func expWithinThreeUlpOverItsRange() {
        let xs = stride(from: -87.0, through: 88.5, by: 0.000731).map(Float.init) + [0, -0, 1e-8, -1e-8, 0.3465, -0.3466]
        let ys = Self.lanes(xs, fastExp)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let exact = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(y) - exact) / Double(Float(exact).ulp))
        }
        #expect(worst <= 3, "worst error \(worst) ulp")
    }

    @Test func expEdgeCases() {
        let xs: [Float] = [-.infinity, .infinity, .nan, -100, -87.4, 88.8, 1000, -1000, 0]
        let ys = Self.lanes(xs, fastExp)
        #expect(ys[0] == 0 && ys[1] == .infinity && ys[2].isNaN && ys[3] == 0 && ys[4] == 0)
        #expect(ys[5] == .infinity && ys[6] == .infinity && ys[7] == 0 && ys[8] == 1)
    }

    @Test func tanhAbsoluteErrorBelowTwoTenthsOfAMillionth() {
        let xs = stride(from: -12.0, through: 12.0, by: 0.0001).map(Float.init) + [1e-30, -1e-30, 50, -50]
        let ys = Self.lanes(xs, fastTanh)
        let worst = zip(xs, ys).map { abs(Double($1) - Foundation.tanh(Double($0))) }.max()!
        #expect(worst <= 2e-7, "worst absolute error \(worst)")
        #expect(Self.lanes([.nan, .infinity, -.infinity], fastTanh).map { $0.isNaN ? 9 : $0 } == [9, 1, -1])
    }
}
