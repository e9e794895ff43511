/// InvokeAI 3.x and later: `invokeai_metadata`, a flat JSON object (invokeai/app/invocations/metadata.py
/// `CoreMetadataInvocation`): positive_prompt, negative_prompt, width, height, seed, steps, cfg_scale, scheduler,
/// strength, model (3.x `{"model_name", …}`, 4.x+ `{"name", "key", …}`, or a string), loras
/// (`[{"lora": {"model_name"}, "weight"}]` in 3.x, `[{"model": {"name"}, "weight"}]` later), vae.
enum InvokeAIReader {
    static func parse(_ text: String, name: String) throws(MetadataError) -> RecalledParameters {
        guard let m = JSONValue.parse(text), m.object != nil else { throw MetadataError("\(name): its InvokeAI metadata chunk is not a JSON object") }
        var p = RecalledParameters(source: .invokeAI, prompt: m["positive_prompt"]?.string ?? "")
        p.negativePrompt = m["negative_prompt"]?.string
        (p.width, p.height, p.seed, p.steps) = (m["width"]?.int, m["height"]?.int, m["seed"]?.seed, m["steps"]?.int)
        p.guidanceScale = m["cfg_scale"]?.double
        // InvokeAI's "scheduler" is the sampling method (euler, dpmpp_2m_k, …): A1111's Sampler.
        p.sampler = m["scheduler"]?.string
        p.strength = m["strength"]?.double
        p.model = modelName(m["model"])
        for entry in m["loras"]?.array ?? [] {
            guard let lora = modelName(entry["lora"] ?? entry["model"]) else { continue }
            p.loras.append(.init(name: lora, strength: entry["weight"]?.double ?? 1))
        }
        if let vae = modelName(m["vae"]) { p.extra.append(.init("vae", vae)) }
        for key in ["generation_mode", "app_version", "rand_device", "cfg_rescale_multiplier", "positive_style_prompt", "negative_style_prompt"] {
            if let v = m[key], v.object == nil, v.array == nil { p.extra.append(.init(key, v.text)) }
        }
        if let refiner = modelName(m["refiner_model"]) { p.warnings.append("an SDXL refiner (\(refiner)) ran after the base model; its settings are not recalled") }
        if let adapters = m["ipAdapters"]?.array, !adapters.isEmpty { p.warnings.append("\(adapters.count) IP-Adapter(s) were used; not recalled") }
        if let nets = m["controlnets"]?.array, !nets.isEmpty { p.warnings.append("\(nets.count) ControlNet(s) were used; not recalled") }
        return p
    }

    /// A model as InvokeAI records one: `{"model_name"}` (3.x), `{"name"}` (4.x+), or plain text.
    static func modelName(_ v: JSONValue?) -> String? {
        guard let v else { return nil }
        return v["model_name"]?.string ?? v["name"]?.string ?? v.string
    }
}
