import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// TAESD3 (AutoencoderTiny) against diffusers 0.42.1 (scripts/fixtures/taesd3.py): a 16-latent-channel model with
/// TAESD3's block layout, from the diffusers folder and from taesd.py's single files, decode and encode within 1e-4 of
/// the largest reference value.
@Suite struct AutoencoderTinyTests {
    static let fixtures = TransformerTests.fixtures
    static let reference = try! SafeTensorsFile(path: fixtures + "/taesd3.safetensors")

    /// max |actual − expected| over max |expected|.
    static func relativeError(_ actual: Tensor, _ expected: Tensor) -> Float {
        let scale = expected.data.map(abs).max() ?? 0
        return zip(actual.data, expected.data).map { abs($0 - $1) }.max().map { $0 / max(scale, .leastNormalMagnitude) } ?? .infinity
    }

    static func expectClose(_ actual: Tensor, _ name: String, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try reference.tensor(name)
        #expect(actual.shape == expected.shape, "\(label) \(name): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
        let error = relativeError(actual, expected)
        #expect(error <= 1e-4, "\(label) \(name): relative error \(error); got \(actual), expected \(expected)", sourceLocation: sourceLocation)
    }

    static let layouts = ["taesd3", "taesd3-single", "taesd3-single/taesd3_decoder.safetensors"]

    @Test(arguments: layouts, [BackendKind.oneDNN, .openBLAS])
    func decodeAndEncodeMatchDiffusers(layout: String, backend: BackendKind) throws {
        let source = try TAESDSource(Self.fixtures + "/" + layout)
        let taesd = try source.load(precision: .fp32, withEncoder: true)
        #expect(taesd.config.latentChannels == 16 && taesd.config.scaleFactor == 8)
        let compute = try Compute(backend: backend, threads: 2)
        let label = "\(layout) \(backend.rawValue)"
        try Self.expectClose(try taesd.decode(try Self.reference.tensor("latents"), compute: compute), "decoded", label)
        try Self.expectClose(try taesd.encode(try Self.reference.tensor("image"), compute: compute), "encoded", label)
    }

    /// The tolerance catches a small error: bf16 weights miss it.
    @Test func toleranceCatchesBF16Weights() throws {
        let taesd = try TAESDSource(Self.fixtures + "/taesd3").load(precision: .bf16, withEncoder: true)
        let decoded = try taesd.decode(try Self.reference.tensor("latents"), compute: Backends.shared)
        #expect(Self.relativeError(decoded, try Self.reference.tensor("decoded")) > 1e-4)
    }

    @Test func decoderAloneDoesNotEncode() throws {
        for layout in Self.layouts {
            let taesd = try TAESDSource(Self.fixtures + "/" + layout).load(precision: .fp32)
            #expect(!taesd.hasEncoder)
            #expect(throws: ModelError.self) { try taesd.encode(try Self.reference.tensor("image"), compute: Backends.shared) }
            try Self.expectClose(try taesd.decode(try Self.reference.tensor("latents"), compute: Backends.shared), "decoded", layout)
        }
    }

    /// The single files' keys are taesd.py's: the decoder's one higher than diffusers' `decoder.layers.N`.
    @Test func singleFileKeysAreOffsetFromDiffusers() throws {
        let folder = try WeightStore(paths: [Self.fixtures + "/taesd3/diffusion_pytorch_model.safetensors"])
        let decoder = try WeightStore(paths: [Self.fixtures + "/taesd3-single/taesd3_decoder.safetensors"])
        let encoder = try WeightStore(paths: [Self.fixtures + "/taesd3-single/taesd3_encoder.safetensors"])
        #expect(decoder.keys.count + encoder.keys.count == folder.keys.count)
        #expect(!decoder.contains("0.weight") && decoder.shape(of: "1.weight") == [8, 16, 3, 3])
        #expect(folder.shape(of: "decoder.layers.0.weight") == [8, 16, 3, 3] && encoder.shape(of: "0.weight") == [8, 3, 3, 3])
    }

    @Test func badFilesGiveClearErrors() throws {
        let encoderFile = Self.fixtures + "/taesd3-single/taesd3_encoder.safetensors"
        #expect(throws: ModelError.unsupported(path: encoderFile, reason: "this is TAESD's encoder; give the decoder (taesd3_decoder.safetensors)")) {
            try TAESDSource(encoderFile).load(precision: .fp32)
        }
        let kl = Self.fixtures + "/tiny-sd3/vae"
        #expect(throws: ModelError.invalidConfig(path: kl + "/config.json", reason: "_class_name is AutoencoderKL, not AutoencoderTiny (TAESD3)")) {
            try TAESDSource(kl).load(precision: .fp32)
        }
        #expect(throws: ModelError.missingFile(path: "/nonexistent/taesd3")) { try TAESDSource("/nonexistent/taesd3") }
        let notTAESD = Self.fixtures + "/tiny-sd3"
        #expect(throws: ModelError.self) { try TAESDSource(notTAESD) }
        // A transformer file is no decoder: named, not a crash.
        let transformer = Self.fixtures + "/tiny-sd3/transformer/diffusion_pytorch_model.safetensors"
        let error = try #require(throws: ModelError.self) { try TAESDSource(transformer).load(precision: .fp32) }
        #expect("\(error)".contains(transformer) && "\(error)".contains("1.weight"))
    }

    /// Decoder files whose first conv has a hostile shape: one error naming the file, never a trap or a huge allocation.
    @Test func hostileSingleFilesAreRefused() throws {
        let folder = NSTemporaryDirectory() + "taesd-hostile-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shapes: [[Int]] = [[0, 16, 3, 3], [8, 16, 3], [70_000, 1, 1, 1], [8, 0, 3, 3], [8, 2000, 1, 1], [8, 16, 3, 3]]
        for (index, shape) in shapes.enumerated() {
            let path = folder + "/taesd3_decoder_\(index).safetensors"
            let count = shape.reduce(1, *)
            try SafeTensorsWriter(entries: [.init(name: "1.weight", dtype: .f32, shape: shape, bytes: [UInt8](repeating: 0, count: 4 * count))])
                .write(to: path)
            let error = try #require(throws: (any Error).self) { try TAESDSource(path).load(precision: .fp32) }
            #expect("\(error)".contains(path) && !"\(error)".contains("\n"), "\(shape): \(error)")
        }
    }

    /// A config naming weights of other shapes fails on the first key, naming it and both shapes.
    @Test func shapeMismatchNamesTheKey() throws {
        let folder = NSTemporaryDirectory() + "taesd-mismatch-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var config = try String(contentsOfFile: Self.fixtures + "/taesd3/config.json", encoding: .utf8)
        config = config.replacingOccurrences(of: "\"latent_channels\": 16", with: "\"latent_channels\": 4")
        try config.write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: folder + "/diffusion_pytorch_model.safetensors",
                                                   withDestinationPath: Self.fixtures + "/taesd3/diffusion_pytorch_model.safetensors")
        let error = try #require(throws: SafeTensorsError.self) { try TAESDSource(folder).load(precision: .fp32) }
        #expect("\(error)".contains("encoder.layers.") || "\(error)".contains("decoder.layers.0.weight"), "\(error)")
    }

    @Test func configProblemsAreNamed() throws {
        var config = AutoencoderTinyConfig.taesd3()
        #expect(config.problem == nil)
        config.actFn = "swish"
        #expect(config.problem?.contains("act_fn 'swish'") == true)
        config = .taesd3()
        config.decoderBlockOutChannels = [64, 32, 64, 64]
        #expect(config.problem?.contains("decoder_block_out_channels") == true)
        config = .taesd3()
        config.numDecoderBlocks = [3, 3]
        #expect(config.problem?.contains("has 4 entries and num_decoder_blocks 2") == true)
        config = .taesd3()
        config.scalingFactor = 0
        #expect(config.problem?.contains("scaling_factor") == true)
    }

    /// Found in the models folder (a `taesd3` folder, the single files, ComfyUI's vae_approx) and in the HF cache.
    @Test func locatesTheUsualPlaces() throws {
        let root = NSTemporaryDirectory() + "taesd-locate-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let models = root + "/models", hub = root + "/hub"
        try FileManager.default.createDirectory(atPath: models + "/vae_approx", withIntermediateDirectories: true)
        let cache = HuggingFaceCache(roots: [hub])
        #expect(TAESDSource.locate(modelsFolder: models, cache: cache) == nil)
        let snapshot = hub + "/models--madebyollin--taesd3/snapshots/0123abcd"
        try FileManager.default.createDirectory(atPath: hub + "/models--madebyollin--taesd3/refs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: hub + "/models--madebyollin--taesd3/snapshots", withIntermediateDirectories: true)
        try "0123abcd".write(toFile: hub + "/models--madebyollin--taesd3/refs/main", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: snapshot, withDestinationPath: Self.fixtures + "/taesd3")
        #expect(TAESDSource.locate(modelsFolder: models, cache: cache)?.layout == .diffusers(folder: snapshot))
        let single = Self.fixtures + "/taesd3-single/taesd3_decoder.safetensors"
        try FileManager.default.createSymbolicLink(atPath: models + "/vae_approx/taesd3_decoder.safetensors", withDestinationPath: single)
        #expect(TAESDSource.locate(modelsFolder: models, cache: cache)?.path == models + "/vae_approx/taesd3_decoder.safetensors")
        try FileManager.default.createSymbolicLink(atPath: models + "/taesd3", withDestinationPath: Self.fixtures + "/taesd3-single")
        // TAESD's single files in the models folder are not offered as SD3 models.
        try FileManager.default.createSymbolicLink(atPath: models + "/taesd3_encoder.safetensors",
                                                   withDestinationPath: Self.fixtures + "/taesd3-single/taesd3_encoder.safetensors")
        #expect(ModelCatalog.scan(configured: [], folders: [models], cache: cache).isEmpty)
        let found = try #require(TAESDSource.locate(modelsFolder: models, cache: cache))
        #expect(found.layout == .singleFiles(decoder: models + "/taesd3/taesd3_decoder.safetensors", encoder: models + "/taesd3/taesd3_encoder.safetensors"))
        #expect(try found.load(precision: .fp32).config.latentChannels == 16)
    }
}
