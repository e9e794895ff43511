/// Fooocus 2.x with its own metadata scheme (`fooocus_scheme` chunk "fooocus"; modules/meta_parser.py
/// `FooocusMetadataParser`): JSON in A1111's `parameters` chunk with prompt, negative_prompt, base_model,
/// base_model_hash, steps, guidance_scale, sampler, scheduler, seed (text), resolution "(W, H)", loras, styles, and
/// the prompts Fooocus actually ran after its styles and expansion (full_prompt, full_negative_prompt).
enum FooocusReader {
    static func parse(_ m: JSONValue, name: String) throws(MetadataError) -> RecalledParameters {
        guard let prompt = m["prompt"]?.string else { throw MetadataError("\(name): its Fooocus parameters have no prompt") }
        var p = RecalledParameters(source: .fooocus, prompt: prompt)
        p.negativePrompt = m["negative_prompt"]?.string
        (p.steps, p.seed, p.guidanceScale) = (m["steps"]?.int, m["seed"]?.seed, m["guidance_scale"]?.double)
        (p.sampler, p.scheduler, p.model) = (m["sampler"]?.string, m["scheduler"]?.string, m["base_model"]?.string)
        // "(768, 1280)": width, height (modules/meta_parser.py writes str((width, height))).
        if let r = m["resolution"]?.string {
            let numbers = r.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            if numbers.count == 2 { (p.width, p.height) = (numbers[0], numbers[1]) }
        }
        for entry in m["loras"]?.array ?? [] {
            // [name, weight] or [name, weight, hash] (2.3+); "name : weight" in older files.
            if let items = entry.array, let file = items.first?.string, let weight = items.dropFirst().first?.double {
                p.loras.append(.init(name: ComfyUIPromptReader.loraName(file), strength: weight, hash: items.dropFirst(2).first?.string))
            } else if let text = entry.string, let colon = text.lastIndex(of: ":"), let weight = Double(String(text[text.index(after: colon)...]).trimmingSpaces) {
                p.loras.append(.init(name: ComfyUIPromptReader.loraName(String(text[..<colon]).trimmingSpaces), strength: weight))
            }
        }
        for (key, value) in m.object ?? [] where !["prompt", "negative_prompt", "steps", "seed", "guidance_scale", "sampler", "scheduler",
                                                    "base_model", "resolution", "loras"].contains(key) {
            p.extra.append(.init(key, value.text))
        }
        if let styles = m["styles"]?.string, styles != "[]" {
            p.warnings.append("Fooocus ran the prompt through its styles \(styles); the prompt here is as typed, full_prompt in the extras is what ran")
        }
        if let refiner = m["refiner_model"]?.string, refiner != "None" { p.warnings.append("a refiner (\(refiner)) ran after the base model; not recalled") }
        return p
    }
}
