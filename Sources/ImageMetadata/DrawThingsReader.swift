/// Draw Things (peers.md §4): Software "Draw Things", Description `prompt\n-negative\nSteps: …, Guidance Scale: …`
/// (not A1111's layout), and Comment JSON: c (prompt), uc (negative), seed, steps, scale, sampler, model, size "WxH",
/// strength, shift, lora [{file, weight}].
enum DrawThingsReader {
    static func claims(software: String?, comment: String?) -> Bool {
        if software?.hasPrefix("Draw Things") == true { return true }
        guard let comment, let m = JSONValue.parse(comment) else { return false }
        return m["c"]?.string != nil && m["scale"] != nil && m["sampler"] != nil
    }

    static func parse(comment: String?, description: String?, name: String) throws(MetadataError) -> RecalledParameters {
        guard let comment, let m = JSONValue.parse(comment), m.object != nil else {
            throw MetadataError("\(name): no generation parameters I can read (a Draw Things PNG without its Comment JSON)")
        }
        var p = RecalledParameters(source: .drawThings, prompt: m["c"]?.string ?? "")
        p.negativePrompt = m["uc"]?.string
        (p.steps, p.seed, p.guidanceScale) = (m["steps"]?.int, m["seed"]?.seed, m["scale"]?.double)
        (p.sampler, p.model, p.shift) = (m["sampler"]?.string, m["model"]?.string, m["shift"]?.double)
        if let size = m["size"]?.string {
            let parts = size.split(separator: "x").compactMap { Int($0) }
            if parts.count == 2 { (p.width, p.height) = (parts[0], parts[1]) }
        }
        if let strength = m["strength"]?.double, strength < 1 { p.strength = strength }
        for entry in m["lora"]?.array ?? [] {
            guard let file = entry["file"]?.string else { continue }
            p.loras.append(.init(name: ComfyUIPromptReader.loraName(file), strength: entry["weight"]?.double ?? 1))
        }
        for key in ["seed_mode", "clip_skip", "hires_fix", "refiner_model"] {
            if let v = m[key], v.object == nil, v.array == nil { p.extra.append(.init(key, v.text)) }
        }
        return p
    }
}
