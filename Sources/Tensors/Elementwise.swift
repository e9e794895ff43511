import Kernels

extension Compute {
    /// a + b, same shapes.
    public func add(_ a: Tensor, _ b: Tensor) -> Tensor { zip(a, b, "add", +) }

    /// a · b, same shapes.
    public func mul(_ a: Tensor, _ b: Tensor) -> Tensor { zip(a, b, "mul", *) }

    /// x·(1 + scale) + shift with x [B, N, D] and scale, shift [B, D] broadcast over N
    /// (diffusers AdaLayerNorm*: `x * (1 + scale[:, None]) + shift[:, None]`).
    public func modulate(_ x: Tensor, shift: Tensor, scale: Tensor) -> Tensor {
        precondition(x.rank == 3, "modulate: x must be [B, N, D], got \(x.shape)")
        let (batch, tokens, width) = (x.dim(0), x.dim(1), x.dim(2))
        precondition(shift.shape == [batch, width] && scale.shape == [batch, width],
                     "modulate: shift \(shift.shape) and scale \(scale.shape) must be [\(batch), \(width)]")
        return shift.data.withUnsafeBufferPointer { ps in
            scale.data.withUnsafeBufferPointer { pc in
                let (ps, pc) = (UncheckedSendable(ps.baseAddress!), UncheckedSendable(pc.baseAddress!))
                return rowwise(x, width: width) { row, out in
                    let b = out.groupIndex / max(1, tokens)
                    sd3k_modulate_row(row.baseAddress!, out.base, width, ps.value + b * width, pc.value + b * width)
                }
            }
        }
    }

    /// LayerNorm without affine parameters, then x·(1 + scale) + shift, in one pass over each row
    /// (diffusers AdaLayerNorm*: `norm(x) * (1 + scale[:, None]) + shift[:, None]`). x [B, N, D], shift, scale [B, D].
    public func normModulate(_ x: Tensor, shift: Tensor, scale: Tensor, eps: Float) -> Tensor {
        precondition(x.rank == 3, "normModulate: x must be [B, N, D], got \(x.shape)")
        let (batch, tokens, width) = (x.dim(0), x.dim(1), x.dim(2))
        precondition(shift.shape == [batch, width] && scale.shape == [batch, width],
                     "normModulate: shift \(shift.shape) and scale \(scale.shape) must be [\(batch), \(width)]")
        return shift.data.withUnsafeBufferPointer { ps in
            scale.data.withUnsafeBufferPointer { pc in
                let (ps, pc) = (UncheckedSendable(ps.baseAddress!), UncheckedSendable(pc.baseAddress!))
                return rowwise(x, width: width) { row, out in
                    let b = out.groupIndex / max(1, tokens)
                    sd3k_norm_modulate_row(row.baseAddress!, out.base, width, eps, ps.value + b * width, pc.value + b * width)
                }
            }
        }
    }

    /// x + gate·y with x, y [B, N, D] and gate [B, D] broadcast over N (diffusers `x + gate.unsqueeze(1) * y`).
    public func gatedAdd(_ x: Tensor, _ y: Tensor, gate: Tensor) -> Tensor {
        precondition(x.rank == 3 && y.shape == x.shape, "gatedAdd: x \(x.shape) and y \(y.shape) must be the same [B, N, D]")
        let (tokens, width) = (x.dim(1), x.dim(2))
        precondition(gate.shape == [x.dim(0), width], "gatedAdd: gate \(gate.shape) must be [\(x.dim(0)), \(width)]")
        return y.data.withUnsafeBufferPointer { ys in
            gate.data.withUnsafeBufferPointer { gs in
                let (other, gates) = (UncheckedSendable(ys.baseAddress!), UncheckedSendable(gs.baseAddress!))
                return rowwise(x, width: width) { row, out in
                    let r = out.groupIndex, b = r / max(1, tokens)
                    sd3k_gated_add_row(row.baseAddress!, other.value + r * width, gates.value + b * width, out.base, width)
                }
            }
        }
    }

    /// Nearest-neighbour ×2 upsampling of [B, C, H, W] → [B, C, 2H, 2W] (F.interpolate, mode="nearest").
    public func upsampleNearest2x(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "upsampleNearest2x: expected [B, C, H, W], got \(x.shape)")
        let (planes, h, w) = (x.dim(0) * x.dim(1), x.dim(2), x.dim(3))
        return Tensor(shape: [x.dim(0), x.dim(1), 2 * h, 2 * w]) { out in
            x.data.withUnsafeBufferPointer { input in
                parallelRanges(planes, threads: threads, minimumPerThread: max(1, 4096 / max(1, h * w))) { range in
                    for p in range {
                        let source = input.baseAddress! + p * h * w
                        let target = out.baseAddress! + p * 4 * h * w
                        for y in 0..<2 * h {
                            let row = source + (y / 2) * w
                            let outRow = target + y * 2 * w
                            for x in 0..<2 * w { outRow[x] = row[x / 2] }
                        }
                    }
                }
            }
        }
    }

    private func zip(_ a: Tensor, _ b: Tensor, _ name: String, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "\(name): shapes \(a.shape) and \(b.shape) differ")
        return Tensor(shape: a.shape) { out in
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    parallelRanges(a.count, threads: threads) { range in
                        for i in range { out[i] = f(pa[i], pb[i]) }
                    }
                }
            }
        }
    }
}
