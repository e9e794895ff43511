import Foundation
import ImageIO
import ImageMetadata
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// LoRAs against diffusers 0.42.1 + peft on tiny-sd3 (scripts/fixtures/lora.py): two LoRAs (ranks 4 and 2, transformer
/// and both CLIP encoders) in three layouts, merged at load and at run time, ≥ 45 dB PSNR; strength 0 and removal
/// give the base image bit for bit.
@Suite struct LoraTests {
    static let fixtures = TransformerTests.fixtures
    static let folder = fixtures + "/lora"
    static let reference = try! SafeTensorsFile(path: folder + "/reference.safetensors")
    // Read once, never written.
    nonisolated(unsafe) static let cases = try! JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[String: Any]]

    static func options(_ loras: [LoraChoice] = [], mode: LoraMode = .merged) -> LoadOptions {
        var options = LoadOptions()
        (options.threads, options.loras, options.loraMode) = (2, loras, mode)
        return options
    }

    static func choices(_ c: [String: Any], layout: String) -> [LoraChoice] {
        // Fixture order: style before detail, as diffusers' set_adapters got them.
        let loras = c["loras"] as! [String: NSNumber]
        return ["style", "detail"].compactMap { name in
            loras[name].map { LoraChoice(path: folder + "/\(name).\(layout).safetensors", strength: $0.doubleValue) }
        }
    }

    static func generate(_ pipeline: StableDiffusion3Pipeline, loras: ActiveLoras? = nil) throws -> RGBImage {
        let c = cases[0]
        var p = GenerationParameters(prompt: c["prompt"] as! String)
        p.negativePrompt = c["negative_prompt"] as! String
        (p.width, p.height, p.steps) = (c["width"] as! Int, c["height"] as! Int, c["steps"] as! Int)
        p.guidanceScale = (c["guidance"] as! NSNumber).doubleValue
        p.seed = UInt64(c["seed"] as! Int)
        p.maxSequenceLength = 77
        return try pipeline.generate(p, loras: loras)
    }

    /// ≥ 45 dB against diffusers' image of case `index` in `reference` (this suite's, or another fixture's).
    static func expectMatch(_ image: RGBImage, case index: Int, _ label: String,
                            reference: SafeTensorsFile = reference, cases: [[String: Any]] = cases) throws {
        let pixels = Array(reference.bytes(try #require(reference.info("case\(index).image"))))
        let quality = PipelineTests.psnr(image.pixels, pixels)
        #expect(quality >= 45, "\(label), case \(index) \(cases[index]["loras"]!): PSNR \(quality) dB")
    }

    @Test(arguments: ["diffusers", "kohya", "comfyui"])
    func mergedMatchesDiffusers(layout: String) throws {
        for index in Self.cases.indices.dropFirst() {
            let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3",
                                                        options: Self.options(Self.choices(Self.cases[index], layout: layout)))
            try Self.expectMatch(try Self.generate(pipeline), case: index, "merged \(layout)")
        }
    }

    @Test(arguments: ["diffusers", "kohya", "comfyui"])
    func runTimeMatchesDiffusersAndRemovesExactly(layout: String) throws {
        let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options(mode: .runTime))
        let base = try Self.generate(pipeline)
        try Self.expectMatch(base, case: 0, "run-time \(layout) base")
        var loras = ActiveLoras.none
        for index in Self.cases.indices.dropFirst() {
            loras = try pipeline.loras(Self.choices(Self.cases[index], layout: layout), reusing: loras)
            try Self.expectMatch(try Self.generate(pipeline, loras: loras), case: index, "run-time \(layout)")
        }
        #expect(try Self.generate(pipeline, loras: try pipeline.loras([], reusing: loras)) == base,
                "removing every LoRA returns the base image bit for bit")
        #expect(try Self.generate(pipeline) == base, "the pipeline is unchanged by the runs with LoRAs")
    }

    @Test func strengthZeroIsTheBaseImage() throws {
        let base = try Self.generate(try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options()))
        let zero = [LoraChoice(path: Self.folder + "/style.kohya.safetensors", strength: 0)]
        let merged = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options(zero))
        #expect(try Self.generate(merged) == base)
        let runTime = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options(zero, mode: .runTime))
        #expect(try Self.generate(runTime) == base)
        let half = try runTime.loras([LoraChoice(path: Self.folder + "/style.diffusers.safetensors", strength: 0.5)])
        #expect(try Self.generate(runTime, loras: half) != base)
    }

    /// A run-time LoRA rewritten under the same path (the studio's training panel writing its output again) is read
    /// again: the next image is the new file's, not the one read before.
    @Test func aRewrittenFileIsReadAgain() throws {
        let path = NSTemporaryDirectory() + "lora-rewritten-\(getpid()).safetensors"
        defer { unlink(path) }
        try FileManager.default.copyItem(atPath: Self.folder + "/style.diffusers.safetensors", toPath: path)
        let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options(mode: .runTime))
        let first = try pipeline.loras([LoraChoice(path: path)])
        let style = try Self.generate(pipeline, loras: first)
        let again = try pipeline.loras([LoraChoice(path: path)], reusing: first)
        #expect(again.list[0].file.stamp == first.list[0].file.stamp && again.textEncoderKey == first.textEncoderKey)
        #expect(try Self.generate(pipeline, loras: again) == style, "an unchanged file is the same LoRA")
        // Written as the trainer writes: a new file renamed over the old one.
        try FileManager.default.copyItem(atPath: Self.folder + "/detail.diffusers.safetensors", toPath: path + ".new")
        #expect(rename(path + ".new", path) == 0)
        let reread = try pipeline.loras([LoraChoice(path: path)], reusing: again)
        #expect(reread.textEncoderKey != again.textEncoderKey, "the prompt cache would keep the old file's embeddings")
        let rewritten = try Self.generate(pipeline, loras: reread)
        let detail = try Self.generate(pipeline, loras: try pipeline.loras([LoraChoice(path: Self.folder + "/detail.diffusers.safetensors")]))
        #expect(rewritten != style && rewritten == detail, "the LoRA read before the rewrite was reused")
    }

    @Test func layoutsAndHashes() throws {
        let diffusers = try LoraFile(path: Self.folder + "/style.diffusers.safetensors")
        let kohya = try LoraFile(path: Self.folder + "/style.kohya.safetensors")
        #expect(diffusers.layout == "diffusers" && kohya.layout == "kohya")
        #expect(try LoraFile(path: Self.folder + "/style.comfyui.safetensors").layout == "ComfyUI")
        #expect(diffusers.name == "style.diffusers" && diffusers.shortHash.count == 12 && diffusers.shortHash != kohya.shortHash)
        // kohya's fused qkv became to_q/to_k/to_v with the same products as the diffusers pairs.
        #expect(Set(kohya.pairs[.transformer]!.keys) == Set(diffusers.pairs[.transformer]!.keys))
        #expect(kohya.pairs[.textEncoder2]!.count == diffusers.pairs[.textEncoder2]!.count)
        #expect(try LoraChoice(parsing: "a/b.safetensors:0.5") == LoraChoice(path: "a/b.safetensors", strength: 0.5))
        #expect(try LoraChoice(parsing: "b.safetensors") == LoraChoice(path: "b.safetensors", strength: 1))
    }

    /// A LoRA file from (name, shape) pairs of zeros, in a temporary folder.
    static func write(_ name: String, _ tensors: [(String, [Int])]) throws -> String {
        let path = NSTemporaryDirectory() + "lora-\(getpid())-\(name).safetensors"
        let writer = SafeTensorsWriter(entries: tensors.map { .init($0.0, Tensor(zeros: $0.1)) })
        try writer.write(to: path)
        return path
    }

    @Test func errorsNameTheProblem() throws {
        let sdxl = try Self.write("sdxl", [("lora_unet_input_blocks_4_1_proj_in.lora_down.weight", [4, 8])])
        #expect(throws: LoraError.otherBaseModel(path: sdxl, model: "SDXL/SD1.x (UNet)", key: "lora_unet_input_blocks_4_1_proj_in.lora_down.weight")) {
            try LoraFile(path: sdxl)
        }
        let flux = try Self.write("flux", [("transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight", [4, 8])])
        #expect(throws: LoraError.otherBaseModel(path: flux, model: "Flux", key: "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight")) {
            try LoraFile(path: flux)
        }
        let unknown = try Self.write("unknown", [("lora_unet_joint_blocks_0_x_block_attn_nope.lora_down.weight", [4, 32]),
                                                 ("lora_unet_joint_blocks_0_x_block_attn_nope.lora_up.weight", [32, 4])])
        #expect(throws: LoraError.unknownKey(path: unknown, key: "lora_unet_joint_blocks_0_x_block_attn_nope.lora_down.weight")) {
            try LoraFile(path: unknown)
        }
        // SD3.5 Large's width (2432) on tiny-sd3's 32-wide to_q.
        let large = try Self.write("large", [("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", [4, 2432]),
                                             ("transformer.transformer_blocks.0.attn.to_q.lora_B.weight", [2432, 4])])
        #expect(throws: LoraError.shapeMismatch(path: large, key: "transformer.transformer_blocks.0.attn.to_q",
                                                target: "transformer.transformer_blocks.0.attn.to_q.weight", expected: [32, 32],
                                                found: [2432, 2432], model: "SD3.5 Large")) {
            try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options([LoraChoice(path: large)]))
        }
        let deep = try Self.write("deep", [("diffusion_model.joint_blocks.7.x_block.attn.proj.lora_A.weight", [4, 32]),
                                           ("diffusion_model.joint_blocks.7.x_block.attn.proj.lora_B.weight", [32, 4])])
        let nothing = LoraError.matchesNothing(path: deep, key: "diffusion_model.joint_blocks.7.x_block.attn.proj",
                                               target: "transformer.transformer_blocks.7.attn.to_out.0.weight")
        #expect(throws: nothing) {
            try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options([LoraChoice(path: deep)]))
        }
        // Staged, the CLIP encoders are loaded inside `encode`: their merged pairs are checked there.
        let module = "text_encoder.text_model.encoder.layers.99.self_attn.q_proj"
        let clip = try Self.write("clip", [(module + ".lora_A.weight", [4, 32]), (module + ".lora_B.weight", [32, 4])])
        var staged = Self.options([LoraChoice(path: clip)])
        staged.staged = true
        #expect(throws: LoraError.matchesNothing(path: clip, key: module, target: module + ".weight")) {
            try Self.generate(try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: staged))
        }
        let runTime = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options(mode: .runTime))
        #expect(throws: nothing) { try runTime.loras([LoraChoice(path: deep)]) }
        #expect(throws: LoraError.matchesNothing(path: clip, key: module, target: module + ".weight")) { try runTime.loras([LoraChoice(path: clip)]) }
        // Merged pipelines take no run-time LoRAs.
        #expect(throws: LoraError.notRunTime) { try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options()).loras([]) }
        #expect(throws: LoraError.badStrength("x.safetensors:")) { try LoraChoice(parsing: "x.safetensors:") }
    }
}

extension LoraTests {
    /// The PNG text names each LoRA with its short hash (A1111's `Lora hashes`); the JSON keeps strengths and round-trips.
    @Test func metadataRecordsLoras() throws {
        // 0.3 is not a Float: the metadata keeps the strength as given, not Float(0.3) widened back.
        let choices = [LoraChoice(path: Self.folder + "/style.kohya.safetensors", strength: 0.3),
                       LoraChoice(path: Self.folder + "/detail.diffusers.safetensors")]
        let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: Self.options(choices))
        var metadata = ImageMetadata(parameters: GenerationParameters(prompt: "x"), model: "tiny-sd3", t5: true, shift: 3,
                                     precision: "fp32", seconds: nil)
        metadata.record(loras: pipeline.loras, mode: .merged)
        let style = try LoraFile(path: choices[0].path), detail = try LoraFile(path: choices[1].path)
        #expect(metadata.a1111Parameters.contains("Lora hashes: \"style.kohya: \(style.shortHash), detail.diffusers: \(detail.shortHash)\""),
                "\(metadata.a1111Parameters)")
        let decoded = try JSONDecoder().decode(ImageMetadata.self, from: Data(metadata.json.utf8))
        #expect(decoded.loras == [.init(name: "style.kohya", strength: 0.3, hash: style.shortHash, path: choices[0].path),
                                  .init(name: "detail.diffusers", strength: 1, hash: detail.shortHash, path: choices[1].path)])
        #expect(decoded.loraMode == "merged" && LoraFile.shortHash(path: choices[0].path) == style.shortHash)
    }
}

extension LoraTests {
    /// The engine (the studio's path) applies LoRAs per run without reloading, re-encodes the prompt when they change,
    /// records them, and gives the base image bit for bit once they are gone.
    @Test func engineChangesLorasBetweenRuns() async throws {
        let engine = InferenceEngine()
        let c = Self.cases[0]
        var p = GenerationParameters(prompt: c["prompt"] as! String)
        p.negativePrompt = c["negative_prompt"] as! String
        (p.width, p.height, p.steps, p.seed, p.maxSequenceLength) = (32, 32, c["steps"] as! Int, UInt64(c["seed"] as! Int), 77)
        p.guidanceScale = (c["guidance"] as! NSNumber).doubleValue
        var options = LoadOptions()
        options.threads = 2
        func run(_ loras: [LoraChoice]) async throws -> (RGBImage, ImageMetadata, loads: Int, encodes: Int) {
            var result: (RGBImage, ImageMetadata)?
            var (loads, encodes) = (0, 0)
            for try await event in await engine.generate(p, model: Self.fixtures + "/tiny-sd3", options: options, loras: loras) {
                switch event {
                case .loading: loads += 1
                case let .encodedPrompt(_, cached, _): if !cached { encodes += 1 }
                case let .finished(image, metadata, _): result = (image, metadata)
                default: break
                }
            }
            let (image, metadata) = try #require(result)
            return (image, metadata, loads, encodes)
        }
        let base = try await run([])
        try Self.expectMatch(base.0, case: 0, "engine base")
        let both = try await run(Self.choices(Self.cases[4], layout: "comfyui"))
        try Self.expectMatch(both.0, case: 4, "engine")
        #expect(both.loads == 0 && both.encodes == 1, "LoRAs added without reloading, prompt encoded again")
        #expect(both.1.loras?.map(\.strength) == [1, 0.5])
        let again = try await run([])
        #expect(again.0 == base.0 && again.loads == 0 && again.1.loras == nil)
    }
}

extension LoraTests {
    /// The prompt cache keys on what reaches the text encoders: a LoRA on the transformer alone (Hyper-SD3's) reuses the
    /// cached embeddings, and its image is the one a fresh encode gives; a LoRA with CLIP pairs encodes again.
    @Test func theEnginesPromptCacheFollowsTheTextEncodersLoras() async throws {
        let engine = InferenceEngine()
        let c = Self.cases[0]
        var p = GenerationParameters(prompt: c["prompt"] as! String)
        (p.width, p.height, p.steps, p.seed, p.maxSequenceLength) = (32, 32, 2, 7, 77)
        var options = LoadOptions()
        options.threads = 2
        func run(_ loras: [LoraChoice]) async throws -> (image: RGBImage, encodes: Int) {
            var (image, encodes): (RGBImage?, Int) = (nil, 0)
            for try await event in await engine.generate(p, model: Self.fixtures + "/tiny-sd3", options: options, loras: loras) {
                if case let .encodedPrompt(_, cached, _) = event, !cached { encodes += 1 }
                if case let .finished(finished, _, _) = event { image = finished }
            }
            return (try #require(image), encodes)
        }
        let hyper = [LoraChoice(path: FewStepLoraTests.folder + "/Hyper-SD3-8steps-CFG-lora.safetensors", strength: 0.125)]
        #expect(try LoraFile(path: hyper[0].path).pairs.keys.sorted(by: { $0.rawValue < $1.rawValue }) == [.transformer])
        let base = try await run([])
        let withHyper = try await run(hyper)
        #expect(base.encodes == 1 && withHyper.encodes == 0, "a transformer-only LoRA keeps the cached embeddings")
        let pipeline = try StableDiffusion3Pipeline(path: Self.fixtures + "/tiny-sd3", options: InferenceEngine.runTime(options))
        #expect(withHyper.image == (try pipeline.generate(p, loras: try pipeline.loras(hyper))) && withHyper.image != base.image)
        let style = try await run([LoraChoice(path: Self.folder + "/style.diffusers.safetensors")] + hyper)
        #expect(style.encodes == 1, "a LoRA with CLIP pairs encodes the prompt again")
    }
}
