import Testing
@testable import Tensors

/// bf16 weights packed into oneDNN's layout at their first product: the same products as the plain rows for every row
/// count, the plain rows come back bit for bit, and the weight is not held twice.
@Suite struct PackedWeightTests {
    static func rounded(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, data: t.data.map { HalfPrecision.float(bf16: HalfPrecision.bf16($0)) }) }

    @Test func packedProductsMatchThePlainRowsForEveryRowCount() throws {
        let compute = try Compute(backend: .oneDNN, threads: 2)
        var random = SeededRandom(21)
        let (n, k) = (96, 80)
        let w = random.tensor([n, k], scale: 0.5), bias = random.tensor([n])
        let weight = Weight(w, precision: .bf16)
        let plainBits = weight.withOperand { Array(UnsafeBufferPointer(start: $0.assumingMemoryBound(to: UInt16.self), count: n * k)) }
        let native = (compute.backend as? OneDNNBackend)?.nativeBF16 ?? false
        _ = compute.linear(random.tensor([3, k]), weight, bias: bias)
        #expect(weight.bf16.packed == nil, "a product alone does not pack (text encoders use each weight once)")
        compute.prepare(weight, rows: 64)
        for rows in [64, 1, 2, 7, 333] {
            let x = random.tensor([rows, k])
            let got = compute.linear(x, weight, bias: bias)
            let expected = Naive.linear(Self.rounded(x), Self.rounded(w), bias)
            let error = maxRelativeError(got.data, expected.data)
            #expect(error <= 4 * Double(k).squareRoot() * 0x1p-24, "\(rows) rows: error \(error)")
        }
        #expect((weight.bf16.packed != nil) == native, "packed only where oneDNN has bf16 kernels")
        let back = weight.withOperand { Array(UnsafeBufferPointer(start: $0.assumingMemoryBound(to: UInt16.self), count: n * k)) }
        #expect(back == plainBits, "unpacking gives the plain rows bit for bit")
        if native, let packed = weight.bf16.packed { #expect(weight.byteCount == packed.byteCount, "the plain copy is freed once packed") }
        #expect((compute.backend as? OneDNNBackend)?.unpackedProducts == 0, "the packed layout serves every row count")
    }
}
