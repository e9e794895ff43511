import SafeTensors
import Tensors
import Testing

/// `actual` against the tensor `name` of a reference file: same shape, max abs error ≤ `limit`; on failure the
/// message gives the label, the first values of both and the error.
func expectMatches(_ actual: Tensor, _ reference: SafeTensorsFile, _ name: String, limit: Float,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    let expected: Tensor
    do { expected = try reference.tensor(name) } catch {
        Issue.record("\(name): \(error)", sourceLocation: sourceLocation)
        return
    }
    #expect(actual.shape == expected.shape, "\(name): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let worst = zip(actual.data, expected.data).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= limit, "\(name): max abs error \(worst); got \(actual), expected \(expected)", sourceLocation: sourceLocation)
}

enum Backends {
    static let shared = try! Compute(backend: .oneDNN, threads: 2)
}
