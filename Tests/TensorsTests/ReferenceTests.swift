import Testing
@testable import Tensors

/// Each op against PyTorch 2.15 outputs written by scripts/fixtures/ops.py (max relative error ≤ 1e-5).
@Suite struct ReferenceTests {
    let f = Fixtures.tensor

    @Test(arguments: [BackendKind.oneDNN, .openBLAS])
    func products(kind: BackendKind) throws {
        let compute = try Compute(backend: kind, threads: Backends.threads)
        expectMatchesReference(compute.linear(f("linear.x"), Weight(f("linear.weight")), bias: f("linear.bias")), f("linear.out"), "linear")
        expectMatchesReference(compute.matmul(f("matmul.a"), f("matmul.b")), f("matmul.out"), "bmm")
        expectMatchesReference(compute.matmul(f("matmul.a"), f("matmul.bt"), transposeB: true), f("matmul.out_t"), "bmm transposed")
        let x = f("conv.x")
        expectMatchesReference(compute.conv2d(x, Weight(f("conv.weight3")), bias: f("conv.bias3"), padding: .symmetric(1)), f("conv.out_pad1"), "conv pad 1")
        expectMatchesReference(compute.conv2d(x, Weight(f("conv.weight3")), bias: f("conv.bias3"), stride: 2,
                                              padding: Padding(top: 0, bottom: 1, left: 0, right: 1)), f("conv.out_down"), "conv down (0,1,0,1)")
        expectMatchesReference(compute.conv2d(x, Weight(f("conv.weight1"))), f("conv.out_1x1"), "conv 1×1")
        expectMatchesReference(compute.conv2d(f("conv.x_patch"), Weight(f("conv.weight2")), stride: 2), f("conv.out_patch"), "conv patchify")
        for (name, heads, mask, scale) in [("attention", 3, nil, nil), ("attention_cross", 3, nil, nil),
                                           ("attention_causal", 3, AttentionMask.causal, nil),
                                           ("attention_bias", 3, AttentionMask.bias(f("attention_bias.bias")), Float(1))] {
            let out = compute.attention(query: f("\(name).q"), key: f("\(name).k"), value: f("\(name).v"), heads: heads,
                                        scale: scale, mask: mask, scoreBudget: 64)
            expectMatchesReference(out, f("\(name).out"), name)
        }
    }

    @Test func elementwise() {
        let compute = Backends.oneDNN
        expectMatchesReference(compute.layerNorm(f("layer_norm.x"), weight: f("layer_norm.weight"), bias: f("layer_norm.bias"), eps: 1e-5),
                               f("layer_norm.out"), "layer_norm")
        expectMatchesReference(compute.layerNorm(f("layer_norm.x"), eps: 1e-6), f("layer_norm.out_plain"), "layer_norm plain")
        expectMatchesReference(compute.rmsNorm(f("rms_norm.x"), weight: f("rms_norm.weight"), eps: 1e-6), f("rms_norm.out"), "rms_norm")
        expectMatchesReference(compute.groupNorm(f("group_norm.x"), groups: 8, weight: f("group_norm.weight"), bias: f("group_norm.bias"), eps: 1e-6),
                               f("group_norm.out"), "group_norm")
        let x = f("act.x")
        expectMatchesReference(compute.gelu(x), f("act.gelu"), "gelu")
        expectMatchesReference(compute.gelu(x, approximation: .tanh), f("act.gelu_tanh"), "gelu tanh")
        expectMatchesReference(compute.quickGELU(x), f("act.quick_gelu"), "quick_gelu")
        expectMatchesReference(compute.silu(x), f("act.silu"), "silu")
        expectMatchesReference(compute.softmax(f("softmax.x")), f("softmax.out"), "softmax")
        #expect(compute.upsampleNearest2x(f("upsample.x")) == f("upsample.out"))
        expectMatchesReference(compute.modulate(f("modulate.x"), shift: f("modulate.shift"), scale: f("modulate.scale")), f("modulate.out"), "modulate")
        #expect(f("modulate.x").permuted([2, 0, 1]) == f("permute.out"))
    }

    /// torch's float→bf16 and float→f16 roundings, bit for bit (ties, subnormals, overflow).
    @Test func halfPrecisionMatchesTorch() throws {
        let x = f("half.x")
        let bf16 = try #require(Fixtures.ops.info("half.bf16")), f16 = try #require(Fixtures.ops.info("half.f16"))
        let bfBytes = Fixtures.ops.bytes(bf16), f16Bytes = Fixtures.ops.bytes(f16)
        for i in 0..<x.count {
            let torchBF16 = bfBytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            let torchF16 = f16Bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            #expect(HalfPrecision.bf16(x.data[i]) == torchBF16, "bf16 of \(x.data[i])")
            #expect(HalfPrecision.f16(x.data[i]) == torchF16, "f16 of \(x.data[i])")
        }
    }
}
