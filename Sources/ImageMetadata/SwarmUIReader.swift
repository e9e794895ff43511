/// SwarmUI: `{"sui_image_params": {prompt, negativeprompt, model, seed, steps, cfgscale, width, height, sampler,
/// scheduler, initimagecreativity, loras, loraweights, swarm_version, …}, "sui_extra_data": {…}}` in the `parameters`
/// chunk (src/Text2Image/T2IParamInput.cs), or the inner object in a chunk of its own.
enum SwarmUIReader {
    static func parse(_ text: String, name: String) throws(MetadataError) -> RecalledParameters {
        guard let m = JSONValue.parse(text), m.object != nil else { throw MetadataError("\(name): its SwarmUI chunk is not a JSON object") }
        return try parse(m["sui_image_params"] == nil ? .object([("sui_image_params", m)]) : m, name: name)
    }

    static func parse(_ root: JSONValue, name: String) throws(MetadataError) -> RecalledParameters {
        guard let m = root["sui_image_params"], m.object != nil else { throw MetadataError("\(name): its sui_image_params is not a JSON object") }
        var p = RecalledParameters(source: .swarmUI, prompt: m["prompt"]?.string ?? "")
        p.negativePrompt = m["negativeprompt"]?.string
        (p.steps, p.seed, p.guidanceScale) = (m["steps"]?.int, m["seed"]?.seed, m["cfgscale"]?.double)
        (p.width, p.height) = (m["width"]?.int, m["height"]?.int)
        (p.sampler, p.scheduler, p.model) = (m["sampler"]?.string, m["scheduler"]?.string, m["model"]?.string)
        p.shift = m["sigmashift"]?.double
        if m["initimage"] != nil || m["initimagecreativity"] != nil { p.strength = m["initimagecreativity"]?.double }
        let names = m["loras"]?.array ?? [], weights = m["loraweights"]?.array ?? []
        for (i, lora) in names.enumerated() {
            guard let file = lora.string else { continue }
            p.loras.append(.init(name: ComfyUIPromptReader.loraName(file), strength: i < weights.count ? weights[i].double ?? 1 : 1))
        }
        for (key, value) in m.object ?? [] where !["prompt", "negativeprompt", "steps", "seed", "cfgscale", "width", "height", "sampler",
                                                    "scheduler", "model", "sigmashift", "initimagecreativity", "loras", "loraweights"].contains(key) {
            p.extra.append(.init(key, value.text))
        }
        return p
    }
}
