import Foundation
import SafeTensors
import Testing
@testable import Tensors

/// SplitMix64: a small deterministic generator so every test input is reproducible.
struct SeededRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(Double(next() >> 11) * 0x1p-53 * 2 - 1) }
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        Tensor(shape: shape, data: (0..<Tensor.count(of: shape)).map { _ in uniform() * scale })
    }
}

/// Σ(a−b)² / Σb²: the normalized mean squared error of `actual` against `expected`.
func nmse(_ actual: [Float], _ expected: [Float]) -> Double {
    precondition(actual.count == expected.count)
    var error = 0.0, energy = 0.0
    for (a, b) in zip(actual, expected) {
        error += (Double(a) - Double(b)) * (Double(a) - Double(b))
        energy += Double(b) * Double(b)
    }
    return energy == 0 ? error : error / energy
}

/// max|a−b| / max|b|: the largest error relative to the reference's largest magnitude.
func maxRelativeError(_ actual: [Float], _ expected: [Float]) -> Double {
    precondition(actual.count == expected.count)
    var worst = 0.0, scale = 0.0
    for (a, b) in zip(actual, expected) {
        worst = max(worst, abs(Double(a) - Double(b)))
        scale = max(scale, abs(Double(b)))
    }
    return scale == 0 ? worst : worst / scale
}

func expectClose(_ actual: Tensor, _ expected: Tensor, nmse limit: Double = 1e-7, _ label: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let e = nmse(actual.data, expected.data)
    #expect(e <= limit, "\(label): NMSE \(e) > \(limit); got \(actual), expected \(expected), max rel \(maxRelativeError(actual.data, expected.data))",
            sourceLocation: sourceLocation)
}

func expectMatchesReference(_ actual: Tensor, _ expected: Tensor, limit: Double = 1e-5, _ label: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let e = maxRelativeError(actual.data, expected.data)
    #expect(e <= limit, "\(label): max relative error \(e) > \(limit); got \(actual), expected \(expected)", sourceLocation: sourceLocation)
}

enum Backends {
    static let threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    static let oneDNN = try! Compute(backend: .oneDNN, threads: threads)
    static let openBLAS = try! Compute(backend: .openBLAS, threads: threads)
    static let all: [Compute] = [oneDNN, openBLAS]
}

enum Fixtures {
    static let ops: SafeTensorsFile = {
        let url = Bundle.module.url(forResource: "Fixtures/ops", withExtension: "safetensors")!
        return try! SafeTensorsFile(path: url.path)
    }()

    static func tensor(_ name: String) -> Tensor {
        do { return try ops.tensor(name) } catch { fatalError("fixture: \(error)") }
    }
}
