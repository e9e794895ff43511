import Foundation
import ImageIO
import ImageMetadata
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// NaN, Inf and out-of-range numbers from settings, weights and LoRAs (hostile input, docs/testing.md): refused where
/// they enter, and a non-finite latent or image stops the run with a named error instead of the SIGILL of Float →
/// UInt8.
@Suite struct HostileValueTests {
    /// Settings out of range are refused before any work, each naming the setting and the value.
    @Test func settingsOutOfRangeAreRefused() throws {
        let pipeline = try Hostile.open(Hostile.tiny)
        var cases: [(String, GenerationParameters, String)] = []
        var p = Hostile.parameters()
        p.guidanceScale = 1e39
        cases.append(("guidance 1e39", p, "guidance 1e+39"))
        p = Hostile.parameters()
        p.guidanceScale = .nan
        cases.append(("guidance nan", p, "guidance nan"))
        p = Hostile.parameters()
        p.shift = 1e-320
        cases.append(("shift 1e-320", p, "shift 1e-320"))
        p = Hostile.parameters()
        p.skipLayerGuidance = SkipLayerGuidance(layers: [0])
        p.skipLayerGuidance?.scale = .nan
        cases.append(("skip-layer scale nan", p, "skip-layer guidance scale nan"))
        p = Hostile.parameters()
        p.skipLayerGuidance = SkipLayerGuidance(layers: [0])
        p.skipLayerGuidance?.stop = .infinity
        cases.append(("skip-layer stop inf", p, "skip-layer guidance stop inf"))
        p = Hostile.parameters()
        p.variation = VariationSeed(seed: 1, strength: .nan)
        cases.append(("variation nan", p, "variation strength nan"))
        for (label, parameters, fragment) in cases {
            Hostile.expectError(label, [fragment]) { _ = try pipeline.generate(parameters) }
        }
    }

    /// LoRA strengths: NaN, Inf and beyond ±100 are refused when parsed and when given to a pipeline.
    @Test func loraStrengthsOutOfRangeAreRefused() throws {
        for text in ["a.safetensors:nan", "a.safetensors:inf", "a.safetensors:1e19", "a.safetensors:-101"] {
            Hostile.expectError(text, ["a.safetensors", "strength"]) { _ = try LoraChoice(parsing: text) }
        }
        #expect(try LoraChoice(parsing: "a.safetensors:-0.5") == LoraChoice(path: "a.safetensors", strength: -0.5))
        var options = LoadOptions()
        options.loras = [LoraChoice(path: Hostile.loras + "/detail.kohya.safetensors", strength: .infinity)]
        Hostile.expectError("pipeline", ["detail.kohya.safetensors", "strength inf"]) {
            _ = try StableDiffusion3Pipeline(path: Hostile.tiny, options: options)
        }
    }

    /// NaN transformer weights, 0xFF-corrupted ones (every F32 a NaN) and NaN VAE weights end in the named error.
    @Test func nonFiniteWeightsStopTheRunWithANamedError() throws {
        let cases: [(String, String, String)] = [
            ("transformer", "proj_out.weight", "the model produced NaN/Inf at step 1 (weights or settings)"),
            ("transformer", "transformer_blocks.0.attn.to_q.weight", "the model produced NaN/Inf at step 1"),
            ("vae", "decoder.conv_out.weight", "the VAE produced NaN/Inf while decoding"),
        ]
        for (component, key, message) in cases {
            for byte: UInt8 in [0xFF, 0x7F] {  // 0x7F7F7F7F is 3.4e38: finite weights whose products overflow to Inf
                let folder = try Hostile.tinyCopy()
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let file = folder + "/\(component)/diffusion_pytorch_model.safetensors"
                try Hostile.corrupt(file, tensor: key, byte: byte)
                let pipeline = try Hostile.open(folder)
                var steps: [Int] = []
                Hostile.expectError("\(key) bytes \(byte)", [message]) {
                    _ = try pipeline.generate(Hostile.parameters(), onStep: { steps.append($0.index) })
                }
                // The run stopped at the first bad step: no later step ran on NaN latents.
                #expect(steps.isEmpty || component == "vae", "\(key): steps \(steps) ran after NaN")
            }
        }
    }

    /// postprocess never traps: NaN becomes 0, ±Inf clamp, finite values as before (x·0.5 + 0.5, clamped, ·255).
    @Test func postprocessNeverTraps() {
        let values: [Float] = [.nan, .infinity, -.infinity, 1e30, -1e30, 0, 0.5, -0.25, 1, -1, .ulpOfOne]
        let image = VaeImageProcessor.postprocess(Tensor(shape: [1, 3, 1, values.count], data: values + values + values))[0]
        let expected: [UInt8] = values.map { v in
            guard !v.isNaN else { return 0 }
            return UInt8((min(max(v * 0.5 + 0.5, 0), 1) * 255).rounded(.toNearestOrEven))
        }
        #expect((0..<values.count).map { image.pixels[$0 * 3] } == expected)
    }

    /// LoRA files with NaN/Inf/huge weights, a huge or empty kohya alpha or absurd adapter metadata: one error naming
    /// the key, never a trap (Int(1e300)) or an index out of range (alpha of shape [0]).
    @Test func hostileLoraValuesAreRefusedByKey() throws {
        let temp = Hostile.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: temp) }
        let kohya = Hostile.loras + "/detail.kohya.safetensors", diffusers = Hostile.loras + "/detail.diffusers.safetensors"
        let down = "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", alpha = "lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha"
        let cases: [(String, String, [String: String]?, (String, Tensor) -> (String, Tensor)?, String)] = [
            ("nan weight", kohya, nil, { n, t in (n, n == down ? Tensor(shape: t.shape, data: t.data.map { _ in .nan }) : t) }, down),
            ("inf weight", kohya, nil, { n, t in (n, n == down ? Tensor(shape: t.shape, data: t.data.map { _ in .infinity }) : t) }, down),
            ("1e19 weight", kohya, nil, { n, t in (n, n == down ? Tensor(shape: t.shape, data: t.data.map { _ in 1e19 }) : t) }, down),
            ("alpha 1e38", kohya, nil, { n, t in (n, n == alpha ? Tensor(shape: t.shape, data: [1e38]) : t) }, alpha),
            ("alpha of shape [0]", kohya, nil, { n, t in (n, n == alpha ? Tensor(shape: [0], data: []) : t) }, alpha),
            ("r 1e300", diffusers, ["format": "pt", "lora_adapter_metadata": "{\"text_encoder.r\": 1e300}"], { ($0, $1) }, "text_encoder.r"),
            ("lora_alpha nan-like", diffusers, ["format": "pt", "lora_adapter_metadata": "{\"text_encoder.r\": 2, \"text_encoder.lora_alpha\": -1e300}"],
             { ($0, $1) }, "text_encoder.lora_alpha"),
        ]
        for (label, source, metadata, edit, key) in cases {
            let path = temp + "/\(label).safetensors"
            try Hostile.rewrite(source, to: path, metadata: metadata, edit)
            Hostile.expectError(label, [path, key]) { _ = try LoraFile(path: path) }
        }
    }

    /// A LoRA or recorded path that is a FIFO or a device is refused at once (hashing it would block or never end),
    /// and a header length past the end hashes to "" instead of overflowing.
    @Test(.timeLimit(.minutes(10))) func loraFilesThatAreNotFilesAreRefused() throws {
        let temp = Hostile.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: temp) }
        let fifo = temp + "/pipe.safetensors"
        Hostile.mkfifo(fifo)
        for path in [fifo, "/dev/zero", temp] {
            Hostile.expectError(path, [path, "not a regular file"]) { _ = try LoraFile(path: path) }
            #expect(LoraFile.shortHash(path: path) == "")
            #expect(!LoraCatalog.isFile(path))
        }
        let record = ImageMetadata.LoraRecord(name: "pipe", strength: 1, hash: "0123456789ab", path: fifo)
        #expect(LoraCatalog.locate(record, folders: [temp]).path == nil)
        for length: UInt64 in [.max, 1 << 63, UInt64(Int.max) - 3, 9] {
            let path = temp + "/length-\(length).safetensors"
            var bytes: [UInt8] = []
            withUnsafeBytes(of: length.littleEndian) { bytes.append(contentsOf: $0) }
            try Data(bytes + Array("{}".utf8)).write(to: URL(fileURLWithPath: path))
            #expect(LoraFile.shortHash(path: path) == "", "header length \(length)")
        }
    }

    /// The studio's path: the engine's stream ends in the same named error (the studio shows it; F5 on such a model
    /// used to quit with SIGILL), after the steps that were finite.
    @Test func theEngineStreamEndsWithTheNamedError() async throws {
        let folder = try Hostile.tinyCopy()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Hostile.corrupt(folder + "/vae/diffusion_pytorch_model.safetensors", tensor: "decoder.conv_out.weight", byte: 0xFF)
        var steps = 0
        do {
            for try await event in await InferenceEngine().generate(Hostile.parameters(), model: folder, options: LoadOptions()) {
                if case .step = event { steps += 1 }
                if case .finished = event { Issue.record("an image from NaN weights") }
            }
            Issue.record("no error")
        } catch {
            #expect(error as? GenerationError == .nonFinite(step: nil), "\(error)")
        }
        #expect(steps == 2)
    }
}
