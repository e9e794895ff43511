import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// The tiny pipeline's three text encoders against transformers 5.24 (scripts/fixtures/text_encoders.py),
/// within the fp32 rounding limit of each encoder's chain of reductions (ParityLimit), on both backends.
@Suite struct TextEncoderTests {
    static let folder = Bundle.module.url(forResource: "Fixtures/tiny-sd3", withExtension: nil)!.path
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/text-encoders", withExtension: "safetensors")!.path)

    static func ids(_ name: String) -> [[Int]] {
        let (shape, values) = try! reference.integers(name)
        return (0..<shape[0]).map { Array(values[$0 * shape[1]..<($0 + 1) * shape[1]]) }
    }

    static func expectClose(_ actual: Tensor, _ name: String, limit: ParityLimit, sourceLocation: SourceLocation = #_sourceLocation) {
        expectMatches(actual, reference, name, limit: limit, sourceLocation: sourceLocation)
    }

    static func load(_ component: String) throws -> (ComponentFolder, WeightStore) {
        let folder = try ComponentFolder(Self.folder + "/" + component)
        return (folder, try folder.weights())
    }

    @Test(arguments: [("text_encoder", "clip_l"), ("text_encoder_2", "clip_g")], [BackendKind.oneDNN, .openBLAS])
    func clip(component: (String, String), backend: BackendKind) throws {
        let (folder, weights) = try Self.load(component.0)
        let model = try CLIPTextModelWithProjection(config: try folder.config(CLIPTextConfig.self), weights: weights, precision: .fp32)
        let compute = try Compute(backend: backend, threads: 2)
        let ids = Self.ids("\(component.1).ids")
        let output = model(ids, compute: compute)
        let limit = ParityLimit.clip(model.config)
        Self.expectClose(output.hiddenState, "\(component.1).hidden_states_m2", limit: limit)
        Self.expectClose(output.textEmbeds, "\(component.1).text_embeds", limit: limit)
        Self.expectClose(model(ids, clipSkip: 1, compute: compute).hiddenState, "\(component.1).hidden_states_m3", limit: limit)
    }

    @Test(arguments: [77, 256], [BackendKind.oneDNN, .openBLAS])
    func t5(length: Int, backend: BackendKind) throws {
        let (folder, weights) = try Self.load("text_encoder_3")
        let model = try T5EncoderModel(config: try folder.config(T5Config.self), weights: weights, precision: .fp32)
        let compute = try Compute(backend: backend, threads: 2)
        Self.expectClose(model(Self.ids("t5_\(length).ids"), compute: compute), "t5_\(length).last_hidden_state",
                         limit: .t5(model.config, tokens: length))
    }

    /// The limits catch a small error: the same encoders with bf16-rounded weights (2⁻⁹ relative) fail them.
    @Test func limitsCatchBF16Weights() throws {
        let compute = try Compute(backend: .openBLAS, threads: 2)
        for component in [("text_encoder", "clip_l"), ("text_encoder_2", "clip_g")] {
            let (folder, weights) = try Self.load(component.0)
            let model = try CLIPTextModelWithProjection(config: try folder.config(CLIPTextConfig.self), weights: weights, precision: .bf16)
            try expectCaught(model(Self.ids("\(component.1).ids"), compute: compute).hiddenState, Self.reference,
                             "\(component.1).hidden_states_m2", limit: .clip(model.config))
        }
        let (folder, weights) = try Self.load("text_encoder_3")
        let t5 = try T5EncoderModel(config: try folder.config(T5Config.self), weights: weights, precision: .bf16)
        try expectCaught(t5(Self.ids("t5_256.ids"), compute: compute), Self.reference, "t5_256.last_hidden_state",
                         limit: .t5(t5.config, tokens: 256))
    }

    /// `--t5 int8`: per prompt, the embeddings keep cosine similarity ≥ 0.999 with fp32 (#8's bar), and the
    /// int8 model really is a different one (its output is not bit-equal).
    @Test func t5Int8StaysCloseToFP32() throws {
        let (folder, weights) = try Self.load("text_encoder_3")
        let config = try folder.config(T5Config.self)
        let exact = try T5EncoderModel(config: config, weights: weights, precision: .fp32)
        let quantized = try T5EncoderModel(config: config, weights: try folder.weights(), precision: .fp32, int8: true)
        let compute = try Compute(backend: .oneDNN, threads: 2)
        let ids = Self.ids("t5_77.ids")
        let (a, b) = (exact(ids, compute: compute), quantized(ids, compute: compute))
        #expect(a.data != b.data)
        let width = a.count / ids.count
        for p in 0..<ids.count {
            let (x, y) = (a.data[p * width..<(p + 1) * width], b.data[p * width..<(p + 1) * width])
            let dot = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let norms = (x.reduce(0.0) { $0 + Double($1 * $1) } * y.reduce(0.0) { $0 + Double($1 * $1) }).squareRoot()
            #expect(dot / norms >= 0.999, "prompt \(p): cosine \(dot / norms)")
        }
    }

    /// The bucket table of T5's `_relative_position_bucket` (transformers modeling_t5.py) for SD3's T5 (32 buckets, max
    /// distance 128), written out by hand from its formula and checked against torch.
    @Test func relativePositionBucketsMatchTheSpecTable() {
        let table: [(ClosedRange<Int>, Int)] = [(8...11, 8), (12...15, 9), (16...22, 10), (23...31, 11), (32...45, 12),
                                                (46...63, 13), (64...90, 14), (91...255, 15)]
        for n in 0..<256 {
            let expected = n < 8 ? n : table.first { $0.0.contains(n) }!.1
            #expect(T5EncoderModel.relativePositionBucket(-n, buckets: 32, maxDistance: 128) == expected, "bucket(−\(n))")
            if n > 0 { #expect(T5EncoderModel.relativePositionBucket(n, buckets: 32, maxDistance: 128) == 16 + expected, "bucket(+\(n))") }
        }
    }

    @Test func wrongWeightsAreNamed() throws {
        let (folder, weights) = try Self.load("text_encoder")
        var config = try folder.config(CLIPTextConfig.self)
        config.intermediateSize += 1
        #expect { try CLIPTextModelWithProjection(config: config, weights: weights, precision: .fp32) } throws: { error in
            guard case SafeTensorsError.shapeMismatch(_, let key, let expected, let found) = error else { return false }
            return key == "text_model.encoder.layers.0.mlp.fc1.weight" && expected == [38, 32] && found == [37, 32]
        }
        let (_, t5Weights) = try Self.load("text_encoder_3")
        #expect(throws: SafeTensorsError.self) { try T5EncoderModel(config: .t5XXL, weights: t5Weights, precision: .fp32) }
    }
}
