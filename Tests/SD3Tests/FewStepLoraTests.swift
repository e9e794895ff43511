import Foundation
import ImageMetadata
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// The few-step LoRAs' key layouts on tiny-sd3 against diffusers (scripts/fixtures/fewstep_loras.py): Hyper-SD3
/// (diffusers keys with a Conv2d LoRA on pos_embed.proj, fused at 0.125) and Flash-SD3 (a PEFT folder, with the
/// flash scheduler, no T5, guidance 0); merged and run-time, ≥ 45 dB and final latents within the fp32 limit.
@Suite struct FewStepLoraTests {
    static let folder = TransformerTests.fixtures + "/fewstep"
    static let reference = try! SafeTensorsFile(path: folder + "/reference.safetensors")
    nonisolated(unsafe) static let cases: [String: [String: Any]] = {
        let list = try! JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as! String, $0) })
    }()

    static func parameters(_ c: [String: Any]) -> GenerationParameters {
        var p = GenerationParameters(prompt: c["prompt"] as! String)
        p.negativePrompt = c["negative_prompt"] as! String
        (p.width, p.height, p.steps, p.seed) = (c["width"] as! Int, c["height"] as! Int, c["steps"] as! Int, UInt64(c["seed"] as! Int))
        p.guidanceScale = (c["guidance"] as! NSNumber).doubleValue
        p.maxSequenceLength = 77
        p.scheduler = SchedulerKind(rawValue: c["scheduler"] as! String)!
        return p
    }

    /// Runs case `name` with its LoRA in `mode`; returns the PSNR against diffusers' image.
    static func run(_ name: String, mode: LoraMode) throws -> Double {
        let c = try #require(cases[name])
        var options = LoadOptions()
        (options.threads, options.loraMode, options.t5) = (2, mode, c["t5"] as! Bool ? .on : .off)
        if let lora = c["lora"] as? String {
            options.loras = [LoraChoice(path: folder + "/" + lora, strength: (c["strength"] as! NSNumber).doubleValue)]
        }
        let pipeline = try StableDiffusion3Pipeline(path: TransformerTests.fixtures + "/tiny-sd3", options: options)
        let p = parameters(c)
        var latents: Tensor?
        let image = try pipeline.generate(p, onStep: { step in if step.index + 1 == step.total { latents = step.latents } })
        let limit = try PipelineTests.latentLimit(pipeline, p, textTokens: 77)
        let (error, allowed) = limit.check(try #require(latents), try reference.tensor(name + ".latents"))
        #expect(error <= allowed, "\(name) \(mode): latents max abs error \(error) > \(allowed)")
        return PipelineTests.psnr(image.pixels, Array(reference.bytes(try #require(reference.info(name + ".image")))))
    }

    @Test(arguments: [LoraMode.merged, .runTime])
    func hyperMatchesDiffusers(mode: LoraMode) throws {
        let psnr = try Self.run("hyper", mode: mode)
        #expect(psnr >= 45, "Hyper-SD3 layout, \(mode): PSNR \(psnr) dB")
    }

    @Test(arguments: [LoraMode.merged, .runTime])
    func flashMatchesDiffusers(mode: LoraMode) throws {
        let psnr = try Self.run("flash", mode: mode)
        #expect(psnr >= 45, "Flash-SD3 PEFT folder, \(mode): PSNR \(psnr) dB")
    }

    /// The LoRAs move the image: diffusers' LoRA images are far from its images without them (so the cases above can
    /// fail), and ours without them match those.
    @Test(arguments: [("hyper", "base"), ("flash", "flash_base")])
    func theLorasChangeTheImage(lora: String, base: String) throws {
        let without = Array(Self.reference.bytes(try #require(Self.reference.info(base + ".image"))))
        let with = Array(Self.reference.bytes(try #require(Self.reference.info(lora + ".image"))))
        #expect(PipelineTests.psnr(without, with) < 30, "\(lora) vs \(base): PSNR \(PipelineTests.psnr(without, with)) dB")
        let psnr = try Self.run(base, mode: .merged)
        #expect(psnr >= 45, "\(base): PSNR \(psnr) dB")
    }

    @Test func layoutsAreDetected() throws {
        let hyper = try LoraFile(path: Self.folder + "/Hyper-SD3-8steps-CFG-lora.safetensors")
        #expect(hyper.layout == "diffusers" && hyper.pairs[.transformer]?["pos_embed.proj.weight"]?.down.shape == [4, 64])
        let flash = try LoraFile(path: Self.folder + "/flash-sd3")
        #expect(flash.layout == "PEFT" && flash.name == "flash-sd3")
        // r 8, lora_alpha 1 in adapter_config.json: scale 1/8 on every pair, the conv included.
        #expect(flash.pairs[.transformer]?.values.allSatisfy { $0.scale == 0.125 } == true)
        #expect(flash.pairs[.transformer]?["pos_embed.proj.weight"]?.up.shape == [32, 8])
        let inside = try LoraFile(path: Self.folder + "/flash-sd3/adapter_model.safetensors")
        #expect(inside.name == "flash-sd3" && inside.shortHash == flash.shortHash && !flash.shortHash.isEmpty)
    }

    /// The patch-embedding conv pair in kohya's and ComfyUI's names (Stability's `x_embedder.proj`) lands on the same
    /// target with the same flattened matrices as in diffusers' layout.
    @Test func theConvPairReadsInEveryLayout() throws {
        let source = Self.folder + "/Hyper-SD3-8steps-CFG-lora.safetensors"
        let reference = try #require(try LoraFile(path: source).pairs[.transformer]?["pos_embed.proj.weight"])
        let folder = Hostile.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for (layout, down, up) in [("kohya", "lora_unet_x_embedder_proj.lora_down.weight", "lora_unet_x_embedder_proj.lora_up.weight"),
                                   ("ComfyUI", "diffusion_model.x_embedder.proj.lora_A.weight", "diffusion_model.x_embedder.proj.lora_B.weight")] {
            let path = folder + "/\(layout).safetensors"
            try Hostile.rewrite(source, to: path) { key, tensor in
                key == "transformer.pos_embed.proj.lora_A.weight" ? (down, tensor) : key == "transformer.pos_embed.proj.lora_B.weight" ? (up, tensor) : nil
            }
            let lora = try LoraFile(path: path)
            let pair = try #require(lora.pairs[.transformer]?["pos_embed.proj.weight"], "\(layout)")
            #expect(lora.layout == layout && pair.down.shape == [4, 64] && pair.up.shape == [32, 4])
            #expect(pair.down.data == reference.down.data && pair.up.data == reference.up.data && pair.scale == 1, "\(layout)")
        }
        // A conv pair whose up is not 1×1 is not peft's Conv2d LoRA: refused by key, never applied.
        let odd = folder + "/odd.safetensors"
        try Hostile.rewrite(source, to: odd) { key, tensor in
            key.hasPrefix("transformer.pos_embed.proj.") ? (key, key.hasSuffix("lora_B.weight") ? tensor.reshaped([8, 4, 2, 2]) : tensor) : nil
        }
        #expect { try LoraFile(path: odd) } throws: { "\($0)".contains("transformer.pos_embed.proj") && "\($0)".contains("low-rank pair") }
    }

    /// The LoRA scan lists the PEFT folder beside the LoRA files (not the reference images' file, which has no LoRA keys).
    @Test func theScanFindsPeftFolders() {
        #expect(LoraCatalog.scan(folders: [Self.folder]).map(\.name) == ["Hyper-SD3-8steps-CFG-lora", "flash-sd3"])
        #expect(LoraCatalog.resolve("flash-sd3", folders: [Self.folder]) == Self.folder + "/flash-sd3")
        // A recorded PEFT LoRA is found again by its name, with its hash (that of adapter_model.safetensors).
        let hash = LoraFile.shortHash(path: Self.folder + "/flash-sd3/adapter_model.safetensors")
        let found = LoraCatalog.locate(ImageMetadata.LoraRecord(name: "flash-sd3", strength: 1, hash: hash), folders: ["/nonexistent", Self.folder])
        #expect(found.path == Self.folder + "/flash-sd3" && found.hashMatches && hash.count == 12)
    }

    /// A copy of the Flash folder with its config replaced (nil: no config) or its weights file alone.
    static func brokenFolder(_ name: String, config: String?) throws -> String {
        let target = NSTemporaryDirectory() + "fewstep-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: folder + "/flash-sd3/adapter_model.safetensors", toPath: target + "/adapter_model.safetensors")
        if let config { try config.write(toFile: target + "/adapter_config.json", atomically: true, encoding: .utf8) }
        return target
    }

    @Test func badPeftFoldersNameTheProblem() throws {
        let cases: [(String, String?, String)] = [
            ("dora", #"{"peft_type": "LORA", "r": 8, "lora_alpha": 1, "use_dora": true}"#, "use_dora is true"),
            ("prefix", #"{"peft_type": "PREFIX_TUNING", "r": 8}"#, "peft_type is PREFIX_TUNING"),
            ("norank", #"{"peft_type": "LORA", "lora_alpha": 1}"#, "no number for r"),
            ("rank", #"{"peft_type": "LORA", "r": 4, "lora_alpha": 1}"#, "has rank 8, its metadata says 4"),
            ("json", "[1, 2", "not a JSON object"),
        ]
        for (name, config, expected) in cases {
            let path = try Self.brokenFolder(name, config: config)
            do {
                _ = try LoraFile(path: path)
                Issue.record("\(name): loaded")
            } catch {
                #expect("\(error)".contains(expected), "\(name): \(error)")
            }
        }
        // A folder with the config but no weights file names both files; a folder without the config is no LoRA.
        let noWeights = try Self.brokenFolder("noweights", config: #"{"peft_type": "LORA", "r": 8}"#)
        try FileManager.default.removeItem(atPath: noWeights + "/adapter_model.safetensors")
        #expect { try LoraFile(path: noWeights) } throws: { "\($0)".contains("needs the files adapter_config.json and adapter_model.safetensors") }
        let noConfig = try Self.brokenFolder("noconfig", config: nil)
        #expect { try LoraFile(path: noConfig) } throws: { "\($0)".contains(noConfig) && "\($0)".contains("not a regular file") }
        // The weights file alone, away from its config: PEFT keys without their scale are refused by key.
        let alone = NSTemporaryDirectory() + "fewstep-alone-\(getpid()).safetensors"
        try? FileManager.default.removeItem(atPath: alone)
        try FileManager.default.copyItem(atPath: Self.folder + "/flash-sd3/adapter_model.safetensors", toPath: alone)
        #expect { try LoraFile(path: alone) } throws: { "\($0)".contains("base_model.model.") && "\($0)".contains("adapter_config.json") }
    }
}
