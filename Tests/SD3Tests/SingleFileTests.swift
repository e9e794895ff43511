import Foundation
import ImageIO
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// Stability-layout single files (scripts/fixtures/single_file.py: the tiny pipelines written with the reverse of
/// diffusers' mapping, checked there with diffusers' from_single_file) give the diffusers folder's pixels.
@Suite struct SingleFileTests {
    static let fixtures = TransformerTests.fixtures
    static let files = fixtures + "/single-file"

    /// tiny-sd3 (or its SD3.5 transformer) with CLIP-L's projection set to the identity, as SD3 single files mean it.
    static func referenceFolder(sd35: Bool) -> String {
        let folder = NSTemporaryDirectory() + "tiny-sd3-identity-\(sd35 ? "35" : "3")-\(getpid())"
        if FileManager.default.fileExists(atPath: folder) { return folder }
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = fixtures + "/tiny-sd3"
        for entry in try! FileManager.default.contentsOfDirectory(atPath: source) where entry != "text_encoder" && entry != "transformer" {
            try! FileManager.default.createSymbolicLink(atPath: folder + "/" + entry, withDestinationPath: source + "/" + entry)
        }
        try! FileManager.default.createSymbolicLink(atPath: folder + "/text_encoder", withDestinationPath: files + "/clip-l-identity")
        try! FileManager.default.createSymbolicLink(atPath: folder + "/transformer",
                                                    withDestinationPath: sd35 ? fixtures + "/tiny-sd35-transformer" : source + "/transformer")
        return folder
    }

    static func generate(_ source: ModelSource, useT5: Bool = true) throws -> RGBImage {
        var options = LoadOptions()
        (options.threads, options.t5) = (2, useT5 ? .on : .off)
        var p = GenerationParameters(prompt: "a red fox in the snow, oil painting")
        (p.width, p.height, p.steps, p.seed, p.guidanceScale) = (32, 32, 2, 7, 4)
        return try StableDiffusion3Pipeline(source: source, options: options).generate(p)
    }

    struct Variant: Sendable, CustomStringConvertible {
        let description: String
        let main: String
        var clipL: String? = nil, clipG: String? = nil, t5: String? = nil
        var sd35 = false, useT5 = true
        var minimumPSNR = 60.0
    }

    static let variants = [
        Variant(description: "all-in-one, fp16 T5", main: "sd3-incl-clips-t5xxlfp16.safetensors"),
        Variant(description: "all-in-one, fp8 T5", main: "sd3-incl-clips-t5xxlfp8.safetensors", minimumPSNR: 35),
        Variant(description: "without T5 (--no-t5)", main: "sd3-incl-clips.safetensors", useT5: false),
        Variant(description: "split files", main: "sd3.safetensors", clipL: "clip_l.safetensors", clipG: "clip_g.safetensors",
                t5: "t5xxl_fp16.safetensors"),
        Variant(description: "SD3.5 all-in-one", main: "sd35-incl-clips-t5xxlfp16.safetensors", sd35: true),
    ]

    @Test(arguments: variants)
    func generatesTheFolderImage(variant: Variant) throws {
        let reference = Self.referenceFolder(sd35: variant.sd35)
        func file(_ name: String?) -> String? { name.map { Self.files + "/" + $0 } }
        let extras = ModelSource.Extras(clipL: file(variant.clipL), clipG: file(variant.clipG), t5: file(variant.t5), config: reference)
        let source = try ModelSource(Self.files + "/" + variant.main, extras: extras)
        #expect(source.isSingleFile)
        let image = try Self.generate(source, useT5: variant.useT5)
        let expected = try Self.generate(try ModelSource(reference), useT5: variant.useT5)
        let quality = PipelineTests.psnr(image.pixels, expected.pixels)
        print("single file \(variant): PSNR \(quality) dB against the diffusers folder")
        #expect(quality >= variant.minimumPSNR, "\(variant): PSNR \(quality) dB")
    }

    /// Every weight read through the key map equals the folder's (T5 up to fp16 rounding).
    @Test func weightsMatchTheFolder() throws {
        let checkpoint = try SingleFileCheckpoint(path: Self.files + "/sd3-incl-clips-t5xxlfp16.safetensors")
        let folder = Self.referenceFolder(sd35: false)
        for component in SD3Component.allCases {
            let mapped = try checkpoint.weights(component)
            let store = try ComponentFolder(folder + "/" + component.rawValue).weights()
            for key in store.keys where key != "encoder.embed_tokens.weight" {
                let expected = try store.tensor(key, shape: store.info(key)!.shape)
                let found = try mapped.tensor(key, shape: expected.shape)
                let worst = zip(found.data, expected.data).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= (component == .textEncoder3 ? 2e-3 : 0), "\(component.rawValue) \(key): max difference \(worst)")
            }
            #expect(mapped.unusedKeys.filter { $0 != "encoder.embed_tokens.weight" }.isEmpty, "\(component.rawValue): \(mapped.unusedKeys)")
        }
    }

    /// ComfyUI's scaled-fp8 layout (weight × scale_weight, a scaled_fp8 marker): the same T5 as the plain file.
    @Test func scaledWeights() throws {
        let temp = NSTemporaryDirectory() + "sd3-scaled-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        let plain = try SafeTensorsFile(path: Self.files + "/t5xxl_fp16.safetensors")
        var writer = SafeTensorsWriter()
        for info in plain.tensors {
            let t = try plain.tensor(info)
            guard info.shape.count == 2 else { writer.entries.append(.init(info.name, t, as: .f16)); continue }
            writer.entries.append(.init(info.name, Tensor(shape: t.shape, data: t.data.map { $0 / 4 }), as: .f16))
            writer.entries.append(.init(String(info.name.dropLast(".weight".count)) + ".scale_weight", Tensor(shape: [], data: [4])))
            writer.entries.append(.init(String(info.name.dropLast(".weight".count)) + ".scale_input", Tensor(shape: [], data: [1])))
        }
        writer.entries.append(.init(name: "scaled_fp8", dtype: .f8e4m3, shape: [0], bytes: []))
        try writer.write(to: temp + "/t5xxl_fp8_e4m3fn_scaled.safetensors")
        let config = Self.referenceFolder(sd35: false)
        let scaled = try ModelSource(Self.files + "/sd3-incl-clips.safetensors", extras: .init(t5: temp + "/t5xxl_fp8_e4m3fn_scaled.safetensors", config: config))
        let split = try ModelSource(Self.files + "/sd3-incl-clips.safetensors", extras: .init(t5: Self.files + "/t5xxl_fp16.safetensors", config: config))
        let a = try scaled.weights(.textEncoder3) as! MappedWeights, b = try split.weights(.textEncoder3) as! MappedWeights
        #expect(a.unusedKeys == b.unusedKeys)
        let key = "encoder.block.1.layer.1.DenseReluDense.wo.weight"
        // Equal but where w/4 fell into fp16's subnormals.
        let difference = zip(try a.tensor(key, shape: b.shape(of: key)!).data, try b.tensor(key, shape: b.shape(of: key)!).data).map { abs($0 - $1) }
        #expect(difference.max()! <= 1e-6, "max difference \(difference.max()!)")
        #expect(try Self.generate(scaled) == (try Self.generate(split)))
    }

    /// Without config files the configs come from the shapes; for the tiny model only the head width (SD3's 64)
    /// and the activation/eps values differ, so compare everything shapes decide.
    @Test func configsFromTheHeader() throws {
        let checkpoint = try SingleFileCheckpoint(path: Self.files + "/sd35-incl-clips-t5xxlfp16.safetensors")
        #expect(Set(checkpoint.parts.keys) == Set(SD3Component.allCases))
        let derived = try HeaderConfigs.transformer(try checkpoint.weights(.transformer))
        let folder = try ComponentFolder(Self.fixtures + "/tiny-sd35-transformer").config(SD3TransformerConfig.self)
        #expect(derived.numLayers == folder.numLayers && derived.dualAttentionLayers == folder.dualAttentionLayers)
        #expect(derived.qkNorm == "rms_norm" && derived.jointAttentionDim == folder.jointAttentionDim)
        #expect(derived.posEmbedMaxSize == folder.posEmbedMaxSize && derived.pooledProjectionDim == folder.pooledProjectionDim)
        #expect(derived.width == folder.width && derived.patchSize == 2 && derived.outChannels == 16)
        let vae = try HeaderConfigs.vae(try checkpoint.weights(.vae))
        let vaeFolder = try ComponentFolder(Self.fixtures + "/tiny-sd3/vae").config(AutoencoderKLConfig.self)
        #expect(vae.blockOutChannels == vaeFolder.blockOutChannels && vae.layersPerBlock == vaeFolder.layersPerBlock)
        #expect(vae.latentChannels == 16 && vae.upBlockTypes == vaeFolder.upBlockTypes)
        let t5 = try HeaderConfigs.t5(try checkpoint.weights(.textEncoder3))
        let t5Folder = try ComponentFolder(Self.fixtures + "/tiny-sd3/text_encoder_3").config(T5Config.self)
        #expect(t5.numLayers == t5Folder.numLayers && t5.numHeads == t5Folder.numHeads && t5.dKv == t5Folder.dKv && t5.dFf == t5Folder.dFf)
    }

    @Test func errorsNameTheProblem() throws {
        let temp = NSTemporaryDirectory() + "sd3-single-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        // Other families, by their keys.
        for (key, family) in [("model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale", "FLUX"),
                              ("conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias", "SDXL"),
                              ("model.diffusion_model.input_blocks.0.0.weight", "Stable Diffusion 1.x")] {
            let path = temp + "/\(family).safetensors"
            try SafeTensorsWriter(entries: [.init(key, Tensor(zeros: [2]))]).write(to: path)
            #expect { try ModelSource(path) } throws: { error in
                guard case let SingleFileError.notSD3(p, found) = error else { return false }
                return p == path && found.contains(family)
            }
        }
        // A truncated download: the header's size and the file's.
        let whole = try Data(contentsOf: URL(fileURLWithPath: Self.files + "/sd3.safetensors"))
        let cut = temp + "/cut.safetensors"
        try whole.prefix(whole.count - 1000).write(to: URL(fileURLWithPath: cut))
        #expect(throws: SafeTensorsError.truncated(path: cut, expectedSize: whole.count, actualSize: whole.count - 1000)) { try ModelSource(cut) }
        // No T5 in the file: offered --no-t5.
        let noT5 = try ModelSource(Self.files + "/sd3-incl-clips.safetensors", extras: .init(config: Self.referenceFolder(sd35: false)))
        #expect { try Self.generate(noT5) } throws: { "\($0)".contains("--no-t5") && "\($0)".contains("--t5") }
        // Without config files or tokenizers: T5's tokenizer is looked for beside the file and in the cache; then the
        // VAE config read from the shapes assumes SD3's 32 norm groups, which do not divide the tiny VAE's 8 channels.
        let lone = temp + "/sd3_medium_incl_clips_t5xxlfp16.safetensors"
        try FileManager.default.copyItem(atPath: Self.files + "/sd3-incl-clips-t5xxlfp16.safetensors", toPath: lone)
        let bare = try ModelSource(lone, cache: HuggingFaceCache(roots: []))
        #expect { try Self.generate(bare) } throws: { "\($0)".contains("spiece.model") && "\($0)".contains("--no-t5") }
        #expect { try Self.generate(bare, useT5: false) } throws: { "\($0)".contains("norm_num_groups 32 does not divide block_out_channels entry 8") }
        // A CLIP-G file given as --t5.
        #expect(throws: SingleFileError.wrongRole(path: Self.files + "/clip_g.safetensors", flag: .textEncoder3, found: "CLIP-L")) {
            try ModelSource(Self.files + "/sd3.safetensors", extras: .init(t5: Self.files + "/clip_g.safetensors"))
        }
    }
}
