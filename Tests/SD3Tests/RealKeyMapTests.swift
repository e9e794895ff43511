import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// The real SD3 Medium / SD3.5 Medium / SD3.5 Large single-file key lists (single-file/real-keys.json: made by
/// scripts/fixtures/single_file.py from real-size models on torch's meta device, checked there against diffusers'
/// converter) map to exactly the diffusers keys and shapes, and give the preset configs, without any data.
@Suite struct RealKeyMapTests {
    static func readJSON() -> [String: Any] {
        let data = try! Data(contentsOf: URL(fileURLWithPath: SingleFileTests.files + "/real-keys.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static func shapes(_ object: Any?) -> [String: [Int]] { (object as! [String: [Int]]) }

    /// Header-only stand-ins: every tensor with its shape, none readable.
    static func stored(_ keys: [String: [Int]], prefix: String) -> [StoredTensor] {
        keys.filter { $0.key.hasPrefix(prefix) }.map { key, shape in
            StoredTensor(name: String(key.dropFirst(prefix.count)), shape: shape, path: "real-keys.json:" + key) {
                () throws(SafeTensorsError) -> Tensor in throw .missingKey(path: "header only", key: key)
            }
        }
    }

    struct Model: Sendable, CustomStringConvertible {
        let description: String
        let preset: SD3TransformerConfig
    }

    @Test(arguments: [Model(description: "sd3-medium", preset: .sd3Medium), Model(description: "sd3.5-medium", preset: .sd35Medium),
                      Model(description: "sd3.5-large", preset: .sd35Large)])
    func mapsCompletely(model: Model) throws {
        let json = Self.readJSON()
        let singleFile = json["single_file"] as! [String: Any]
        let header = Self.shapes(singleFile[model.description]).merging(Self.shapes(singleFile["encoders-and-vae"])) { a, _ in a }
        let diffusers = json["diffusers"] as! [String: Any]
        var matched = 0
        for (component, prefix) in SingleFileKeyMap.prefixes {
            let weights = try MappedWeights(Self.stored(header, prefix: prefix), map: SingleFileKeyMap.map(for: component), source: model.description)
            let name = component == .transformer ? "transformer-" + model.description : component.rawValue
            // The tied T5 embedding is not in single files; the T5 model needs only shared.weight.
            let expected = Self.shapes(diffusers[name]).filter { $0.key != "encoder.embed_tokens.weight" }
            for (key, shape) in expected {
                #expect(weights.shape(of: key) == shape, "\(model) \(component.rawValue): '\(key)' maps to \(weights.shape(of: key) ?? []) (\(weights.origin(of: key) ?? "missing")), want \(shape)")
                weights.markUsed(key)
                matched += 1
            }
            #expect(weights.unusedKeys.isEmpty, "\(model) \(component.rawValue): unused \(weights.unusedKeys.prefix(5))")
            switch component {
            case .transformer:
                var config = try HeaderConfigs.transformer(weights)
                config.sampleSize = model.preset.sampleSize
                #expect(config == model.preset)
                #expect(HeaderConfigs.familyName(config) == ["sd3-medium": "SD3 Medium", "sd3.5-medium": "SD3.5 Medium", "sd3.5-large": "SD3.5 Large"][model.description])
            case .vae:
                let vae = try HeaderConfigs.vae(weights)
                #expect(vae.blockOutChannels == [128, 256, 512, 512] && vae.layersPerBlock == 2 && vae.latentChannels == 16 && !vae.useQuantConv)
            case .textEncoder: #expect(try HeaderConfigs.clip(weights, component) == .clipL)
            case .textEncoder2: #expect(try HeaderConfigs.clip(weights, component) == .clipG)
            case .textEncoder3: #expect(try HeaderConfigs.t5(weights) == .t5XXL)
            }
        }
        #expect(matched > 1500)
    }
}
