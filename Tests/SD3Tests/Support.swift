import Foundation
import SafeTensors
@testable import SD3
import Tensors
import Testing

/// How far two correct fp32 implementations of one model may differ: each length-K fp32 sum carries a rounding
/// error of about √K·u relative to its terms (u = 2⁻²⁴; the probabilistic bound of Higham & Mary, "A New Approach
/// to Probabilistic Rounding Error Analysis", 2019, with λ = 1), and a network adds one such error per reduction
/// along its longest chain. So max|a − b| ≤ rtol·max|b| with rtol = chain·√length·u: the same limit on every CPU,
/// whatever order oneDNN's AVX2 or AVX-512 kernels, OpenBLAS or torch sum in. Each suite shows that bf16-rounded
/// weights, a 2⁻⁹ relative change, break it.
struct ParityLimit: CustomStringConvertible {
    /// Reductions in sequence from the inputs to the output (products, norms, softmax).
    let chain: Int
    /// The longest of them.
    let length: Int

    var rtol: Float { Float(chain) * Float(length).squareRoot() * 0x1p-24 }
    var description: String { "rtol \(rtol) (chain \(chain), length \(length))" }

    /// max|a − b| and what this limit allows for `expected`.
    func check(_ actual: Tensor, _ expected: Tensor) -> (error: Float, allowed: Float) {
        let error = zip(actual.data, expected.data).map { abs($0 - $1) }.max() ?? 0
        let scale = expected.data.map(abs).max() ?? 0
        return (error.isNaN ? .infinity : error, rtol * scale)
    }

    /// Both chains: a value that went through `self` and then `other`, or the longer of two paths.
    func then(_ other: ParityLimit) -> ParityLimit { ParityLimit(chain: chain + other.chain, length: max(length, other.length)) }
    func or(_ other: ParityLimit) -> ParityLimit { ParityLimit(chain: max(chain, other.chain), length: max(length, other.length)) }

    /// Per layer: norm, q/k/v, scores, softmax, attention·V, out, norm, fc1, fc2; then the final norm and projection.
    static func clip(_ c: CLIPTextConfig, tokens: Int = 77) -> ParityLimit {
        ParityLimit(chain: 9 * c.numHiddenLayers + 2, length: max(tokens, c.hiddenSize, c.intermediateSize))
    }

    /// Per layer: RMS norm, q/k/v, scores, softmax, attention·V, o, RMS norm, wi, wo; then the final norm.
    static func t5(_ c: T5Config, tokens: Int) -> ParityLimit {
        ParityLimit(chain: 9 * c.numLayers + 1, length: max(tokens, c.dModel, c.dFf))
    }

    /// Embeddings (patch conv, two-layer time and pooled MLPs, context embedder); per block: adaLN linear, norm, q/k/v,
    /// qk-norm, scores, softmax, attention·V, out, norm, ff up, ff down (five more with a second attention); then
    /// norm_out's modulation, norm and proj_out. `tokens`: image patches plus text tokens.
    static func transformer(_ c: SD3TransformerConfig, tokens: Int) -> ParityLimit {
        let width = c.numAttentionHeads * c.attentionHeadDim
        return ParityLimit(chain: 4 + 11 * c.numLayers + 5 * c.dualAttentionLayers.count + 3,
                           length: max(tokens, 4 * width, c.jointAttentionDim, c.patchSize * c.patchSize * c.inChannels))
    }

    /// The longer of encoder and decoder: conv in; per resolution (layers_per_block + 1 for the decoder) ResNet blocks of
    /// norm, conv, norm, conv and a resampling conv; the mid block (two ResNets and a one-head attention); norm, conv
    /// out. The longest sums: a 3×3 conv, a group norm at full resolution, attention over the latent pixels.
    static func vae(_ c: AutoencoderKLConfig, height: Int, width: Int) -> ParityLimit {
        let blocks = c.blockOutChannels.count, widest = c.blockOutChannels.max() ?? 0
        let scale = 1 << (blocks - 1), latentPixels = (height / scale) * (width / scale)
        let groupAtFullSize = (c.blockOutChannels.first ?? 0) / max(1, c.normNumGroups) * height * width
        return ParityLimit(chain: 1 + blocks * (c.layersPerBlock + 1) * 4 + (blocks - 1) + 14 + 2,
                           length: max(9 * widest, groupAtFullSize, latentPixels, widest))
    }
}

/// `actual` against the tensor `name` of a reference file: same shape, within `limit`; on failure the message gives
/// the label, the first values of both, the error and the limit.
func expectMatches(_ actual: Tensor, _ reference: SafeTensorsFile, _ name: String, limit: ParityLimit,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    let expected: Tensor
    do { expected = try reference.tensor(name) } catch {
        Issue.record("\(name): \(error)", sourceLocation: sourceLocation)
        return
    }
    #expect(actual.shape == expected.shape, "\(name): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let (error, allowed) = limit.check(actual, expected)
    #expect(error <= allowed, "\(name): max abs error \(error) > \(allowed), \(limit); got \(actual), expected \(expected)",
            sourceLocation: sourceLocation)
}

/// The other side of a limit: `actual` (a deliberately wrong result, e.g. from bf16 weights) must fail it.
func expectCaught(_ actual: Tensor, _ reference: SafeTensorsFile, _ name: String, limit: ParityLimit,
                  sourceLocation: SourceLocation = #_sourceLocation) throws {
    let (error, allowed) = limit.check(actual, try reference.tensor(name))
    #expect(error > allowed, "\(name): a deliberate error of \(error) passed the limit \(allowed), \(limit)", sourceLocation: sourceLocation)
}

enum Backends {
    static let shared = try! Compute(backend: .oneDNN, threads: 2)
}
