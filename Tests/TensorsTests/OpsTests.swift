import Foundation
import Testing
@testable import Tensors

/// Every op against its naive twin, on both backends where the op uses one.
@Suite struct OpsTests {
    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func linear(kind: BackendKind) throws {
        let compute = try Compute(backend: kind, threads: Backends.threads)
        var random = SeededRandom(1)
        for (rows, inF, outF) in [(1, 1, 1), (7, 33, 17), (2 * 64, 96, 130)] {
            let x = random.tensor([rows, inF]), w = random.tensor([outF, inF]), b = random.tensor([outF])
            expectClose(compute.linear(x, Weight(w), bias: b), Naive.linear(x, w, b), "\(kind) linear \(rows)×\(inF)→\(outF)")
            expectClose(compute.linear(x.reshaped([1, rows, inF]), Weight(w)), Naive.linear(x, w, nil).reshaped([1, rows, outF]),
                        "\(kind) linear without bias")
        }
    }

    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func batchedMatmul(kind: BackendKind) throws {
        let compute = try Compute(backend: kind, threads: Backends.threads)
        var random = SeededRandom(2)
        let a = random.tensor([3, 5, 19]), b = random.tensor([3, 19, 11]), bt = random.tensor([3, 11, 19])
        expectClose(compute.matmul(a, b), Naive.matmul(a, b, transposeB: false), "\(kind) bmm")
        expectClose(compute.matmul(a, bt, transposeB: true), Naive.matmul(a, bt, transposeB: true), "\(kind) bmm transposed")
    }

    @Test func norms() {
        var random = SeededRandom(3)
        let compute = Backends.oneDNN
        let x = random.tensor([3, 4, 40], scale: 5), w = random.tensor([40]), b = random.tensor([40])
        expectClose(compute.layerNorm(x, weight: w, bias: b, eps: 1e-5), Naive.layerNorm(x, w, b, eps: 1e-5), "layerNorm affine")
        expectClose(compute.layerNorm(x, eps: 1e-6), Naive.layerNorm(x, nil, nil, eps: 1e-6), "layerNorm plain")
        expectClose(compute.rmsNorm(x, weight: w, eps: 1e-6), Naive.rmsNorm(x, w, eps: 1e-6), "rmsNorm")
        expectClose(compute.rmsNorm(x, eps: 1e-6), Naive.rmsNorm(x, nil, eps: 1e-6), "rmsNorm plain")
        let image = random.tensor([2, 32, 9, 7], scale: 3), gw = random.tensor([32]), gb = random.tensor([32])
        expectClose(compute.groupNorm(image, groups: 32, weight: gw, bias: gb, eps: 1e-6), Naive.groupNorm(image, groups: 32, gw, gb, eps: 1e-6), "groupNorm 32")
        expectClose(compute.groupNorm(image, groups: 4, eps: 1e-6), Naive.groupNorm(image, groups: 4, nil, nil, eps: 1e-6), "groupNorm 4 plain")
        // Large rows take the multi-threaded path.
        let big = random.tensor([64, 2048], scale: 2)
        expectClose(compute.layerNorm(big, eps: 1e-6), Naive.layerNorm(big, nil, nil, eps: 1e-6), "layerNorm threaded")
    }

    @Test func activations() {
        var random = SeededRandom(4)
        let compute = Backends.oneDNN
        let x = random.tensor([50_000], scale: 8)
        expectClose(compute.gelu(x), Naive.map(x) { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }, "gelu erf")
        expectClose(compute.gelu(x, approximation: .tanh),
                    Naive.map(x) { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }, "gelu tanh")
        expectClose(compute.quickGELU(x), Naive.map(x) { $0 / (1 + exp(-1.702 * $0)) }, "quickGELU")
        expectClose(compute.silu(x), Naive.map(x) { $0 / (1 + exp(-$0)) }, "silu")
        let logits = random.tensor([9, 333], scale: 60)
        expectClose(compute.softmax(logits), Naive.softmax(logits), "softmax")
        let extreme = Tensor(shape: [1, 3], data: [1e30, -1e30, 88])
        #expect(compute.softmax(extreme).data == [1, 0, 0], "softmax must not overflow")
    }

    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func attention(kind: BackendKind) throws {
        let compute = try Compute(backend: kind, threads: Backends.threads)
        var random = SeededRandom(5)
        let q = random.tensor([2, 21, 48]), k = random.tensor([2, 30, 48]), v = random.tensor([2, 30, 48])
        func flat(_ rows: [Int: [Float]], _ count: Int) -> [Float] { (0..<count).flatMap { rows[$0]! } }
        let expected = Tensor(shape: [2, 21, 48], data: flat(Naive.attention(q, k, v, heads: 3, scale: nil, causal: false, bias: nil), 42))
        // Tiny budgets force many chunks, including a ragged last one.
        for budget in [30, 7 * 30, 1 << 22] {
            expectClose(compute.attention(query: q, key: k, value: v, heads: 3, scoreBudget: budget), expected, "\(kind) attention budget \(budget)")
        }
        let s = random.tensor([2, 17, 32])
        let causal = Tensor(shape: [2, 17, 32], data: flat(Naive.attention(s, s, s, heads: 2, scale: nil, causal: true, bias: nil), 34))
        expectClose(compute.attention(query: s, key: s, value: s, heads: 2, mask: .causal, scoreBudget: 5 * 17), causal, "\(kind) causal")
        let bias = random.tensor([2, 2, 17, 17], scale: 3)
        let biased = Tensor(shape: [2, 17, 32], data: flat(Naive.attention(s, s, s, heads: 2, scale: 1, causal: false, bias: bias), 34))
        expectClose(compute.attention(query: s, key: s, value: s, heads: 2, scale: 1, mask: .bias(bias)), biased, "\(kind) per-batch bias")
    }

    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func convolution(kind: BackendKind) throws {
        let compute = try Compute(backend: kind, threads: Backends.threads)
        var random = SeededRandom(6)
        let x = random.tensor([2, 5, 13, 10])
        let cases: [(kernel: Int, stride: Int, padding: Padding, bias: Bool)] = [
            (3, 1, .symmetric(1), true), (3, 2, Padding(top: 0, bottom: 1, left: 0, right: 1), true),
            (1, 1, .symmetric(0), true), (2, 2, .symmetric(0), false), (3, 1, .symmetric(0), false),
            (3, 2, Padding(top: 2, bottom: 0, left: 1, right: 3), true),
        ]
        for c in cases {
            let w = random.tensor([7, 5, c.kernel, c.kernel]), b = c.bias ? random.tensor([7]) : nil
            expectClose(compute.conv2d(x, Weight(w), bias: b, stride: c.stride, padding: c.padding),
                        Naive.conv2d(x, w, b, stride: c.stride, padding: c.padding),
                        "\(kind) conv k\(c.kernel) s\(c.stride) \(c.padding)")
        }
    }

    @Test func elementwiseAndShapes() {
        var random = SeededRandom(7)
        let compute = Backends.oneDNN
        let a = random.tensor([3, 50, 40]), b = random.tensor([3, 50, 40])
        expectClose(compute.add(a, b), Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 + $1 }), "add")
        expectClose(compute.mul(a, b), Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 * $1 }), "mul")
        let shift = random.tensor([3, 40]), scale = random.tensor([3, 40])
        var modulated = [Float]()
        for i in 0..<a.count { let (n, d) = (i / 2000, i % 40); modulated.append(a.data[i] * (1 + scale.data[n * 40 + d]) + shift.data[n * 40 + d]) }
        expectClose(compute.modulate(a, shift: shift, scale: scale), Tensor(shape: a.shape, data: modulated), "modulate")
        let image = random.tensor([2, 3, 5, 4])
        #expect(compute.upsampleNearest2x(image) == Naive.upsample(image))
        for axes in [[0, 1, 2], [2, 0, 1], [1, 0, 2], [2, 1, 0]] {
            #expect(a.permuted(axes) == Naive.permute(a, axes), "permute \(axes)")
        }
        let parts = a.split([10, 25, 15], axis: 1)
        #expect(parts.map(\.shape) == [[3, 10, 40], [3, 25, 40], [3, 15, 40]])
        #expect(Naive.element(parts[1], [2, 3, 7]) == Naive.element(a, [2, 13, 7]))
        #expect(Tensor.concat(parts, axis: 1) == a, "concat undoes split")
        let columns = a.chunked(4, axis: -1)
        #expect(Naive.element(columns[3], [1, 2, 9]) == Naive.element(a, [1, 2, 39]))
        #expect(Tensor.concat(columns, axis: 2) == a)
        #expect(a.reshaped([-1, 40]).shape == [150, 40])
    }
}

@Suite struct GatedAddTests {
    @Test func gatedAddBroadcastsTheGateOverTokens() {
        var random = SeededRandom(8)
        let x = random.tensor([2, 5, 6]), y = random.tensor([2, 5, 6]), gate = random.tensor([2, 6])
        var expected = [Float]()
        for i in 0..<x.count { let (b, d) = (i / 30, i % 6); expected.append(x.data[i] + gate.data[b * 6 + d] * y.data[i]) }
        expectClose(Backends.oneDNN.gatedAdd(x, y, gate: gate), Tensor(shape: x.shape, data: expected), "gatedAdd")
    }
}
