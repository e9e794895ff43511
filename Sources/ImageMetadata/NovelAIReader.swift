/// NovelAI's PNGs: Description is the prompt, Source the model ("Stable Diffusion 1D44365E": name and hash),
/// Software "NovelAI", and Comment JSON with steps, sampler, seed, scale, uc (the negative prompt), strength, noise
/// and, in later versions, prompt, width and height.
enum NovelAIReader {
    static func parse(comment: String, description: String?, source: String?, name: String) throws(MetadataError) -> RecalledParameters {
        guard let m = JSONValue.parse(comment), m.object != nil else { throw MetadataError("\(name): its NovelAI Comment chunk is not a JSON object") }
        var p = RecalledParameters(source: .novelAI, prompt: m["prompt"]?.string ?? description ?? "")
        p.negativePrompt = m["uc"]?.string
        (p.steps, p.seed, p.guidanceScale, p.sampler) = (m["steps"]?.int, m["seed"]?.seed, m["scale"]?.double, m["sampler"]?.string)
        (p.width, p.height) = (m["width"]?.int, m["height"]?.int)
        if let source {
            // The last word is the model's hash when it is hexadecimal.
            let words = source.split(separator: " ")
            if words.count > 1, let last = words.last, last.allSatisfy(\.isHexDigit) {
                p.model = words.dropLast().joined(separator: " ")
                p.extra.append(.init("Model hash", String(last)))
            } else {
                p.model = source
            }
        }
        // NovelAI writes strength and noise on every image; they act only on an init image, which the file does not say.
        for key in ["strength", "noise", "sm", "sm_dyn", "cfg_rescale", "noise_schedule"] {
            if let v = m[key], v.object == nil, v.array == nil { p.extra.append(.init(key, v.text)) }
        }
        return p
    }
}
