import Foundation
import SafeTensors
import Testing
@testable import SD3

/// `sd3 info` against a pipeline diffusers' save_pretrained wrote (scripts/fixtures/tiny_pipeline.py),
/// compared with the manifest the same script computed in Python from the saved files.
@Suite struct ModelInspectorTests {
    static let folder = Bundle.module.url(forResource: "Fixtures/tiny-sd3", withExtension: nil)!.path
    static var manifest: [String: Any] {
        let url = Bundle.module.url(forResource: "Fixtures/tiny-sd3-info", withExtension: "json")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    @Test func describesEveryComponentOfADiffusersFolder() throws {
        let info = try ModelInspector.inspect(Self.folder)
        #expect(info.kind == .pipeline(className: Self.manifest["pipeline_class"] as! String,
                                       diffusersVersion: Self.manifest["diffusers_version"] as? String))
        let expected = Self.manifest["components"] as! [String: [String: Any]]
        let present = expected.filter { $0.value["library"] is String }
        #expect(Set(info.components.map(\.name)) == Set(present.keys))
        #expect(Set(info.absentComponents) == Set(expected.keys).subtracting(present.keys))
        for component in info.components {
            let want = try #require(present[component.name])
            #expect(component.library == want["library"] as? String, "\(component.name) library")
            #expect(component.declaredClass == want["class"] as? String, "\(component.name) class")
            if ["transformer", "vae", "scheduler", "text_encoder", "text_encoder_2", "text_encoder_3"].contains(component.name) {
                #expect(component.configClass == component.declaredClass, "\(component.name): config class \(String(describing: component.configClass))")
            }
            let weights = component.primaryWeights
            #expect((weights?.tensorCount ?? 0) == want["tensor_count"] as! Int, "\(component.name) tensor count")
            #expect((weights?.parameterCount ?? 0) == want["parameter_count"] as! Int, "\(component.name) parameters")
            #expect((weights?.bytes ?? 0) == want["bytes"] as! Int, "\(component.name) bytes")
            let dtypes = Dictionary(uniqueKeysWithValues: (weights?.dtypes ?? [:]).map { ($0.key.rawValue, $0.value) })
            #expect(dtypes == want["dtypes"] as! [String: Int], "\(component.name) dtypes")
            // The manifest lists every weight file, variants included.
            let files = component.weights.flatMap(\.files).map { String($0.dropFirst(Self.folder.count + 1)) }
            #expect(files.sorted() == (want["files"] as! [String]).sorted(), "\(component.name) files")
        }
    }

    @Test func fp16VariantIsItsOwnWeightSet() throws {
        guard let variant = Self.manifest["variant_fp16"] as? [String: Any] else { return }
        let info = try ModelInspector.inspect(Self.folder)
        let transformer = try #require(info.components.first { $0.name == "transformer" })
        let fp16 = try #require(transformer.weights.first { $0.variant == "fp16" })
        #expect(transformer.primaryWeights?.variant == nil)
        #expect(fp16.tensorCount == variant["tensor_count"] as? Int)
        #expect(fp16.bytes == variant["bytes"] as? Int)
        #expect(fp16.dtypes[.f16] == (variant["dtypes"] as? [String: Int])?["F16"])
    }

    @Test func componentFolderAndSingleFile() throws {
        let vae = try ModelInspector.inspect(Self.folder + "/vae")
        #expect(vae.kind == .component)
        #expect(vae.components.first?.configClass == "AutoencoderKL")
        let file = try ModelInspector.inspect(Self.folder + "/vae/diffusion_pytorch_model.safetensors")
        #expect(file.kind == .file)
        #expect(file.components.first?.primaryWeights?.tensorCount == vae.components.first?.primaryWeights?.tensorCount)
    }

    @Test func brokenInputsNameTheProblem() throws {
        let temp = NSTemporaryDirectory() + "sd3-info-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: temp) }
        try FileManager.default.copyItem(atPath: Self.folder, toPath: temp)
        // A truncated weight file inside a component.
        let weights = temp + "/vae/diffusion_pytorch_model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: weights))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: weights))
        #expect { try ModelInspector.inspect(temp) } throws: { error in
            guard case SafeTensorsError.truncated(let path, let expected, let actual) = error else { return false }
            return path == weights && expected == bytes.count && actual == bytes.count / 2
        }
        // A component folder model_index.json names but that is gone.
        try FileManager.default.removeItem(atPath: temp + "/vae")
        #expect(throws: ModelInfoError.missingComponentFolder(component: "vae", path: temp)) { try ModelInspector.inspect(temp) }
        try "{not json".write(toFile: temp + "/model_index.json", atomically: true, encoding: .utf8)
        #expect(throws: ModelInfoError.invalidJSON(path: temp + "/model_index.json", reason: "not a JSON object")) { try ModelInspector.inspect(temp) }
        #expect(throws: ModelInfoError.notFound(temp + "/nothing")) { try ModelInspector.inspect(temp + "/nothing") }
        let empty = temp + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(throws: ModelInfoError.notAModel(empty)) { try ModelInspector.inspect(empty) }
    }
}
