extension Tensor {
    /// torch.cat along `axis` (negative counts from the end); every other axis must match.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat: no tensors")
        let first = parts[0]
        let a = axis < 0 ? first.rank + axis : axis
        precondition(a >= 0 && a < first.rank, "concat: axis \(axis) out of range for \(first.shape)")
        for p in parts {
            precondition(p.rank == first.rank && (0..<first.rank).allSatisfy { $0 == a || p.shape[$0] == first.shape[$0] },
                         "concat: \(p.shape) does not match \(first.shape) outside axis \(a)")
        }
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        var shape = first.shape
        shape[a] = parts.reduce(0) { $0 + $1.shape[a] }
        var data = [Float]()
        data.reserveCapacity(Tensor.count(of: shape))
        for o in 0..<outer {
            for p in parts {
                let block = p.shape[a] * inner
                data.append(contentsOf: p.data[o * block..<(o + 1) * block])
            }
        }
        return Tensor(shape: shape, data: data)
    }

    /// torch.split with explicit sizes along `axis`; the sizes must add up to the axis length.
    public func split(_ sizes: [Int], axis: Int) -> [Tensor] {
        let a = axis < 0 ? rank + axis : axis
        precondition(a >= 0 && a < rank, "split: axis \(axis) out of range for \(shape)")
        precondition(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[a], "split: \(sizes) do not add up to \(shape[a]) in \(shape)")
        let outer = shape[..<a].reduce(1, *)
        let inner = shape[(a + 1)...].reduce(1, *)
        var start = 0
        return sizes.map { size in
            var partShape = shape
            partShape[a] = size
            var part = [Float]()
            part.reserveCapacity(outer * size * inner)
            for o in 0..<outer {
                let base = (o * shape[a] + start) * inner
                part.append(contentsOf: data[base..<base + size * inner])
            }
            start += size
            return Tensor(shape: partShape, data: part)
        }
    }

    /// Splits into `count` equal chunks along `axis` (torch.chunk with an even split).
    public func chunked(_ count: Int, axis: Int) -> [Tensor] {
        let a = axis < 0 ? rank + axis : axis
        precondition(count > 0 && shape[a] % count == 0, "chunk: \(shape[a]) does not split into \(count)")
        return split([Int](repeating: shape[a] / count, count: count), axis: a)
    }

    /// torch.permute: output axis i is input axis `axes[i]`; the result is contiguous.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank && Set(axes) == Set(0..<rank), "permute: \(axes) is not a permutation of \(rank) axes")
        let outShape = axes.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = axes.map { inStrides[$0] }
        guard count > 0 else { return Tensor(zeros: outShape) }
        return Tensor(shape: outShape) { out in
            data.withUnsafeBufferPointer { input in
                var index = [Int](repeating: 0, count: rank)
                var source = 0
                let last = rank - 1
                for i in 0..<count {
                    out[i] = input[source]
                    // Odometer over the output index; `source` follows with the permuted strides.
                    var axis = last
                    while axis >= 0 {
                        index[axis] += 1
                        source += strides[axis]
                        if index[axis] < outShape[axis] { break }
                        source -= strides[axis] * outShape[axis]
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
    }
}
