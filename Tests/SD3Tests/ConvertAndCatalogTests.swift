import Foundation
import Testing
@testable import SD3

/// `sd3 convert` and `sd3 models list` on the tiny single files.
@Suite struct ConvertAndCatalogTests {
    @Test func convertedFolderGivesTheSameImage() throws {
        let output = NSTemporaryDirectory() + "sd3-converted-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let reference = SingleFileTests.referenceFolder(sd35: true)
        let single = try ModelSource(SingleFileTests.files + "/sd35-incl-clips-t5xxlfp16.safetensors", extras: .init(config: reference))
        try DiffusersConverter.convert(single, to: output)
        let converted = try ModelSource(output)
        #expect(!converted.isSingleFile)
        #expect(try converted.transformerConfig() == (try single.transformerConfig()))
        #expect(try SingleFileTests.generate(converted) == (try SingleFileTests.generate(single)))
        #expect(throws: ModelSourceError.outputExists(path: output)) { try DiffusersConverter.convert(single, to: output) }
        #expect(throws: ModelSourceError.notSingleFile(path: output)) { try DiffusersConverter.convert(converted, to: output + "-again") }
    }

    @Test func listsEveryModel() throws {
        let root = NSTemporaryDirectory() + "sd3-catalog-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let models = root + "/models"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        for name in ["sd3-incl-clips.safetensors", "sd3.safetensors", "clip_g.safetensors"] {
            try FileManager.default.copyItem(atPath: SingleFileTests.files + "/" + name, toPath: models + "/" + name)
        }
        try "not safetensors".write(toFile: models + "/broken.safetensors", atomically: true, encoding: .utf8)
        _ = try HuggingFaceCacheTests.makeRepo(root + "/hub", id: "tiny/sd3-diffusers", from: TransformerTests.fixtures + "/tiny-sd3", commit: "abc")
        let entries = ModelCatalog.scan(configured: [TransformerTests.fixtures + "/tiny-sd3"], folders: [models],
                                        cache: HuggingFaceCache(roots: [root + "/hub"]))
        let byName = Dictionary(uniqueKeysWithValues: entries.map { (URL(fileURLWithPath: $0.model).lastPathComponent, $0) })
        #expect(byName["tiny-sd3"]?.encoders == ["CLIP-L", "CLIP-G", "T5-XXL"] && byName["tiny-sd3"]?.layout == "diffusers folder")
        #expect(byName["sd3-incl-clips.safetensors"]?.encoders == ["CLIP-L", "CLIP-G"])
        #expect(byName["sd3.safetensors"]?.encoders == [] && byName["sd3.safetensors"]?.kind.hasPrefix("SD3-style MMDiT (2 layers") == true)
        #expect(byName["sd3.safetensors"]?.bytes == 581268)
        #expect(byName["clip_g.safetensors"]?.problem != nil && byName["broken.safetensors"]?.problem != nil)
        #expect(byName["sd3-diffusers"]?.layout == "Hugging Face cache (diffusers)" && entries.last?.model == "tiny/sd3-diffusers")
        #expect(ModelCatalog.modelsFolder(environment: ["XDG_DATA_HOME": "/d", "HOME": "/h"]) == "/d/sd3-studio/models")
    }
}
