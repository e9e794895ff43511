import Foundation
@testable import ImageMetadata
import Testing

/// Each reader on hand-written chunks in its tool's documented layout, for what the sample PNGs do not cover: SwarmUI,
/// Draw Things, InvokeAI 4.x models and LoRAs, ComfyUI's SD3 nodes (ModelSamplingSD3, LoRA loaders, SamplerCustomAdvanced,
/// ControlNetApplyAdvanced), A1111's LoRA tags, hashes and hires keys, and what is refused.
@Suite struct ReaderTests {
    let settings = "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 832x1216, Model: sdxl"

    @Test func a1111LoraTagsHashesAndExtras() throws {
        let text = "a cat <lora:style-a:0.8>, on a mat <lora:detail:1.5:0.5> <lyco:x:0.3>\nNegative prompt: blurry\n" + settings
            + #", Denoising strength: 0.4, Hires upscale: 2, Hires upscaler: Latent, Refiner: sdxl_refiner, Refiner switch at: 0.8, Lora hashes: "style-a: abc123def456, detail: 0123456789ab", TI hashes: "bad-hands: 5e1b0c9d", Version: v1.10.1"#
        let p = try MetadataReader.parse([("parameters", text)], name: "a.png")
        #expect(p.source == .a1111 && p.prompt == "a cat, on a mat" && p.negativePrompt == "blurry")
        #expect(p.loras == [.init(name: "style-a", strength: 0.8, hash: "abc123def456"), .init(name: "detail", strength: 1.5, hash: "0123456789ab"),
                            .init(name: "x", strength: 0.3)])
        #expect(p.strength == 0.4 && p.scheduler == "Karras" && p.width == 832 && p.height == 1216)
        for key in ["Hires upscale", "Hires upscaler", "Refiner", "Refiner switch at", "TI hashes", "Lora hashes", "Version"] {
            #expect(p.extra.contains { $0.key == key }, "\(key) not kept: \(p.extra)")
        }
        // Not tags: an unclosed one, one with no name, one whose weight is not a number.
        let odd = try MetadataReader.parse([("parameters", "<lora:a <lora::1> <lora:b:x> c\n" + settings)], name: "a.png")
        #expect(odd.loras.isEmpty && odd.prompt == "<lora:a <lora::1> <lora:b:x> c")
    }

    @Test func swarmUIInParametersOrItsOwnChunk() throws {
        let params = #"{"prompt": "a fox", "negativeprompt": "blur", "model": "sd3.5_large", "seed": 18446744073709551615, "steps": 30, "cfgscale": 4.5, "width": 1024, "height": 768, "sampler": "euler", "scheduler": "normal", "sigmashift": 3.0, "loras": ["style-a", "sub/detail.safetensors"], "loraweights": ["0.7", 1.25], "swarm_version": "0.9.6"}"#
        for chunks in [[("parameters", #"{"sui_image_params": "# + params + #", "sui_extra_data": {"date": "2026-01-01"}}"#)], [("sui_image_params", params)]] {
            let p = try MetadataReader.parse(chunks, name: "s.png")
            #expect(p.source == .swarmUI && p.prompt == "a fox" && p.negativePrompt == "blur" && p.model == "sd3.5_large")
            #expect(p.seed == .max && p.steps == 30 && p.guidanceScale == 4.5 && p.width == 1024 && p.height == 768 && p.shift == 3)
            #expect(p.loras == [.init(name: "style-a", strength: 0.7), .init(name: "detail", strength: 1.25)])
            #expect(p.extra.contains(.init("swarm_version", "0.9.6")))
        }
    }

    @Test func drawThingsComment() throws {
        let comment = #"{"c": "a lighthouse", "uc": "fog", "seed": 7, "steps": 8, "scale": 5, "sampler": "DPM++ 2M Karras", "model": "sd3_medium_q8p.ckpt", "size": "768x512", "strength": 1, "shift": 3, "lora": [{"file": "style_lora_f16.ckpt", "weight": 0.6}], "v2": {}}"#
        let p = try MetadataReader.parse([("Description", "a lighthouse\n-fog\nSteps: 8"), ("Comment", comment), ("Software", "Draw Things")], name: "d.png")
        #expect(p.source == .drawThings && p.prompt == "a lighthouse" && p.negativePrompt == "fog" && p.seed == 7 && p.steps == 8)
        #expect(p.guidanceScale == 5 && p.width == 768 && p.height == 512 && p.strength == nil && p.shift == 3 && p.model == "sd3_medium_q8p.ckpt")
        #expect(p.loras == [.init(name: "style_lora_f16", strength: 0.6)])
    }

    @Test func invokeAI4ModelsAndLoras() throws {
        let m = #"{"positive_prompt": "a cat", "negative_prompt": "", "width": 1024, "height": 1024, "seed": 5, "steps": 30, "cfg_scale": 7.5, "scheduler": "dpmpp_2m_k", "model": {"key": "abc", "name": "sd3.5 medium", "base": "sd-3"}, "loras": [{"model": {"key": "k", "name": "pixel-art"}, "weight": 0.75}, {"lora": {"model_name": "old-style"}, "weight": 0.5}], "app_version": "5.6.0"}"#
        let p = try MetadataReader.parse([("invokeai_metadata", m)], name: "i.png")
        #expect(p.source == .invokeAI && p.model == "sd3.5 medium" && p.sampler == "dpmpp_2m_k" && p.guidanceScale == 7.5)
        #expect(p.loras == [.init(name: "pixel-art", strength: 0.75), .init(name: "old-style", strength: 0.5)])
        #expect(p.extra.contains(.init("app_version", "5.6.0")))
    }

    /// SD3 in ComfyUI: CLIPTextEncodeSD3, ModelSamplingSD3, two LoRA loaders, SamplerCustomAdvanced with its guider,
    /// sampler, sigmas and noise nodes, a ControlNetApplyAdvanced between the prompts and the guider, and an unused
    /// prompt node that is warned of.
    @Test func comfyUISD3Graph() throws {
        let graph = #"""
        {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd3.5_medium.safetensors"}},
         "2": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": "sd3/style-a.safetensors", "strength_model": 0.8, "strength_clip": 0.8}},
         "3": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["2", 0], "lora_name": "detail.safetensors", "strength_model": 1.25}},
         "4": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["3", 0], "shift": 0.8700000000000001}},
         "5": {"class_type": "CLIPTextEncodeSD3", "inputs": {"clip": ["2", 1], "clip_l": "a red fox", "clip_g": "a red fox", "t5xxl": "a red fox", "empty_padding": "none"}},
         "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": "blurry"}},
         "7": {"class_type": "ControlNetApplyAdvanced", "inputs": {"positive": ["5", 0], "negative": ["6", 0], "strength": 0.5}},
         "8": {"class_type": "CFGGuider", "inputs": {"model": ["4", 0], "positive": ["7", 0], "negative": ["7", 1], "cfg": 4.5}},
         "9": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
         "10": {"class_type": "BasicScheduler", "inputs": {"model": ["4", 0], "scheduler": "simple", "steps": 28, "denoise": 1.0}},
         "11": {"class_type": "RandomNoise", "inputs": {"noise_seed": 18446744073709551615}},
         "12": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 1344, "batch_size": 1}},
         "13": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["11", 0], "guider": ["8", 0], "sampler": ["9", 0], "sigmas": ["10", 0], "latent_image": ["12", 0]}},
         "14": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": "an unused prompt"}}}
        """#
        let p = try MetadataReader.parse([("prompt", graph)], name: "c.png")
        #expect(p.source == .comfyUI && p.prompt == "a red fox" && p.negativePrompt == "blurry")
        #expect(p.seed == .max && p.steps == 28 && p.guidanceScale == 4.5 && p.sampler == "euler" && p.scheduler == "simple" && p.strength == nil)
        #expect(p.width == 1024 && p.height == 1344 && p.shift == 0.8700000000000001 && p.model == "sd3.5_medium.safetensors")
        #expect(p.loras == [.init(name: "style-a", strength: 0.8), .init(name: "detail", strength: 1.25)], "\(p.loras)")
        #expect(p.warnings == ["1 other prompt(s) in this graph, not recalled"], "\(p.warnings)")
    }

    @Test func unknownOrAmbiguousIsRefusedOrSaid() throws {
        #expect(throws: MetadataError("x.png: no generation parameters I can read (its parameters chunk is JSON of a tool I do not know)")) {
            try MetadataReader.parse([("parameters", #"{"foo": 1}"#)], name: "x.png")
        }
        #expect(throws: MetadataError("x.png: no generation parameters I can read (chunks: Title, Comment, a?b)")) {
            try MetadataReader.parse([("Title", "t"), ("Comment", "just words"), ("a\nb", "")], name: "x.png")
        }
        let dynamic = try MetadataReader.parse([("parameters", "{red|blue} cat\n" + settings)], name: "x.png")
        #expect(dynamic.source == .a1111 && dynamic.prompt == "{red|blue} cat")
        let both = try MetadataReader.parse([("prompt", #"{"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}"#), ("parameters", "x\n" + settings)], name: "x.png")
        #expect(both.source == .comfyUI && both.warnings.contains("this PNG also has a parameters chunk (another tool's parameters), not read"))
    }
}
