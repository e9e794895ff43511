import Foundation

/// ComfyUI's PNG chunks (comfy_extras/nodes_images.py / nodes.py `SaveImage`): `prompt` is the API graph,
/// `{"id": {"class_type": …, "inputs": {name: value or [source id, output index]}}}`; `workflow` is the UI
/// graph, `{"nodes": [{"id", "type", "inputs": [{"name", "link"}], "widgets_values": […]}], "links": [[id,
/// from, slot, to, slot, type]]}`. The parameters live on the sampler node; the prompts, size and checkpoint
/// are found by following its inputs.
enum ComfyUIParameters {
    static let samplers: Set<String> = ["KSampler", "KSamplerAdvanced"]
    static let textEncoders: Set<String> = ["CLIPTextEncode", "CLIPTextEncodeSD3", "CLIPTextEncodeSDXL"]
    static let latents: Set<String> = ["EmptyLatentImage", "EmptySD3LatentImage"]
    static let loaders = ["CheckpointLoaderSimple": "ckpt_name", "CheckpointLoader": "ckpt_name", "UNETLoader": "unet_name"]

    static func json(_ text: String, _ what: String, _ name: String) throws(StoreError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw StoreError("\(name): its ComfyUI \(what) chunk is not a JSON object")
        }
        return object
    }

    static func parse(prompt text: String, name: String) throws(StoreError) -> RecalledParameters {
        let graph = try json(text, "prompt", name).compactMapValues { $0 as? [String: Any] }
        func node(_ link: Any?) -> [String: Any]? {
            guard let link = link as? [Any], let id = link.first else { return nil }
            return graph["\(id)"]
        }
        func type(_ n: [String: Any]?) -> String { n?["class_type"] as? String ?? "" }
        func inputs(_ n: [String: Any]?) -> [String: Any] { n?["inputs"] as? [String: Any] ?? [:] }
        // Sorted by id so a graph with two samplers reads the same every time.
        let ids = graph.keys.sorted { (Int($0) ?? .max, $0) < (Int($1) ?? .max, $1) }
        guard let samplerID = ids.first(where: { samplers.contains(type(graph[$0])) }) else {
            throw StoreError("\(name): its ComfyUI prompt has no KSampler node")
        }
        let sampler = inputs(graph[samplerID])
        /// A prompt: the text of the encoder the conditioning comes from (through any conditioning nodes).
        func encoded(_ link: Any?, depth: Int = 0) -> String? {
            guard depth < 8, let n = node(link) else { return nil }
            let i = inputs(n)
            if type(n) == "ConditioningZeroOut" { return "" }
            if textEncoders.contains(type(n)) {
                for key in ["text", "t5xxl", "clip_l", "text_g"] {
                    if let s = i[key] as? String { return s }
                    if let s = inputs(node(i[key]))["value"] as? String { return s }
                }
            }
            for key in ["conditioning", "conditioning_1", "conditioning_to", "positive"] where i[key] != nil {
                if let s = encoded(i[key], depth: depth + 1) { return s }
            }
            return nil
        }
        var p = RecalledParameters(source: .comfyUI, prompt: encoded(sampler["positive"]) ?? "")
        p.negativePrompt = encoded(sampler["negative"])
        p.seed = seed(sampler["seed"] ?? sampler["noise_seed"])
        p.steps = number(sampler["steps"]).flatMap { Int(exactly: $0) }
        p.guidanceScale = number(sampler["cfg"])
        p.sampler = sampler["sampler_name"] as? String
        p.scheduler = sampler["scheduler"] as? String
        if let denoise = number(sampler["denoise"]), denoise < 1 { p.strength = denoise }
        var latent = node(sampler["latent_image"])
        for _ in 0..<8 where latent != nil && !latents.contains(type(latent)) {
            latent = node(inputs(latent)["samples"] ?? inputs(latent)["latent"])
        }
        if latents.contains(type(latent)) {
            p.width = number(inputs(latent)["width"]).flatMap { Int(exactly: $0) }
            p.height = number(inputs(latent)["height"]).flatMap { Int(exactly: $0) }
        }
        // The model chain: ModelSamplingSD3 (shift), LoRA loaders, … down to the checkpoint loader.
        var model = node(sampler["model"])
        for _ in 0..<8 {
            guard let n = model else { break }
            if type(n) == "ModelSamplingSD3", let shift = number(inputs(n)["shift"]) { p.shift = shift }
            if let key = loaders[type(n)] { p.model = inputs(n)[key] as? String; break }
            model = node(inputs(n)["model"])
        }
        p.extra.append(RecalledParameters.Pair("Sampler node", "\(type(graph[samplerID])) #\(samplerID)"))
        return p
    }

    /// The UI graph, for PNGs saved with only a workflow: widget values in the nodes' declared order.
    static func parse(workflow text: String, name: String) throws(StoreError) -> RecalledParameters {
        let object = try json(text, "workflow", name)
        let nodes = (object["nodes"] as? [[String: Any]] ?? []).sorted { (number($0["id"]) ?? 0) < (number($1["id"]) ?? 0) }
        let links = object["links"] as? [[Any]] ?? []
        func widgets(_ n: [String: Any]?) -> [Any] { n?["widgets_values"] as? [Any] ?? [] }
        func source(_ n: [String: Any], _ input: String) -> [String: Any]? {
            let entries = n["inputs"] as? [[String: Any]] ?? []
            guard let link = entries.first(where: { $0["name"] as? String == input })?["link"].flatMap(number),
                  let row = links.first(where: { number($0.first) == link }), row.count > 1, let from = number(row[1]) else { return nil }
            return nodes.first { number($0["id"]) == from }
        }
        guard let sampler = nodes.first(where: { samplers.contains($0["type"] as? String ?? "") }) else {
            throw StoreError("\(name): its ComfyUI workflow has no KSampler node")
        }
        // KSampler widgets: seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise.
        let w = widgets(sampler)
        let advanced = sampler["type"] as? String == "KSamplerAdvanced"
        let offset = advanced ? 1 : 0  // KSamplerAdvanced starts with add_noise
        func prompt(_ input: String) -> String? {
            guard let n = source(sampler, input) else { return nil }
            if n["type"] as? String == "ConditioningZeroOut" { return "" }
            return widgets(n).first as? String
        }
        var p = RecalledParameters(source: .comfyUI, prompt: prompt("positive") ?? "")
        p.negativePrompt = prompt("negative")
        func at(_ i: Int) -> Any? { w.indices.contains(i + offset) ? w[i + offset] : nil }
        p.seed = seed(at(0))
        p.steps = number(at(2)).flatMap { Int(exactly: $0) }
        p.guidanceScale = number(at(3))
        p.sampler = at(4) as? String
        p.scheduler = at(5) as? String
        if let latent = source(sampler, "latent_image"), latents.contains(latent["type"] as? String ?? "") {
            p.width = number(widgets(latent).first).flatMap { Int(exactly: $0) }
            p.height = number(widgets(latent).dropFirst().first).flatMap { Int(exactly: $0) }
        }
        var model = source(sampler, "model")
        for _ in 0..<8 {
            guard let n = model else { break }
            if n["type"] as? String == "ModelSamplingSD3" { p.shift = number(widgets(n).first) }
            if loaders[n["type"] as? String ?? ""] != nil { p.model = widgets(n).first as? String; break }
            model = source(n, "model")
        }
        return p
    }

    /// Seeds go up to 2⁶⁴−1 (ComfyUI's limit), past a Double's exact integers: an integer keeps its exact digits;
    /// a fraction, a negative number or one past 2⁶⁴−1 is no seed (NSNumber's uint64Value would wrap or saturate
    /// it into a different seed).
    static func seed(_ value: Any?) -> UInt64? {
        guard let n = value as? NSNumber else { return nil }
        if let exact = UInt64(n.stringValue) { return exact }
        let d = n.doubleValue
        guard d >= 0, d == d.rounded(), d < 0x1p64 else { return nil }
        return UInt64(d)
    }

    static func number(_ value: Any?) -> Double? {
        if let n = value as? NSNumber { return n.doubleValue }
        return nil
    }
}
