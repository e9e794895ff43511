import Foundation

/// InvokeAI's PNG chunks. 3.x–5.x: `invokeai_metadata`, a flat JSON object (invokeai/app/invocations/metadata.py
/// `CoreMetadataInvocation`: positive_prompt, negative_prompt, width, height, seed, steps, cfg_scale, scheduler,
/// model {name, …}, strength). 2.x: `sd-metadata`, `{"model_weights", "image": {"prompt": [{"prompt",
/// "weight"}] or a string, "steps", "cfg_scale", "width", "height", "seed", "sampler"}}`, where the negative
/// prompt is the `[bracketed]` parts of the prompt.
enum InvokeAIParameters {
    static func parse(_ text: String, name: String) throws(StoreError) -> RecalledParameters {
        let m = try ComfyUIParameters.json(text, "metadata", name)
        var p = RecalledParameters(source: .invokeAI, prompt: m["positive_prompt"] as? String ?? "")
        p.negativePrompt = m["negative_prompt"] as? String
        readSizeSeedStepsAndCFG(m, into: &p)
        p.scheduler = m["scheduler"] as? String
        p.strength = ComfyUIParameters.number(m["strength"])
        p.model = (m["model"] as? [String: Any])?["name"] as? String ?? m["model"] as? String
        for key in ["generation_mode", "app_version"] { if let v = m[key] as? String { p.extra.append(.init(key, v)) } }
        return p
    }

    static func parseLegacy(_ text: String, name: String) throws(StoreError) -> RecalledParameters {
        let m = try ComfyUIParameters.json(text, "sd-metadata", name)
        guard let image = m["image"] as? [String: Any] else { throw StoreError("\(name): its sd-metadata chunk has no \"image\" object") }
        let whole: String
        if let prompts = image["prompt"] as? [[String: Any]] {
            whole = prompts.compactMap { $0["prompt"] as? String }.joined(separator: " ")
        } else {
            whole = image["prompt"] as? String ?? ""
        }
        // "a cat [blurry, dark]": the bracketed parts are the negative prompt.
        var positive = "", negative: [String] = [], depth = 0, current = ""
        for c in whole {
            if c == "[" { depth += 1; if depth == 1 { current = "" }; continue }
            if c == "]", depth > 0 { depth -= 1; if depth == 0 { negative.append(current) }; continue }
            if depth > 0 { current.append(c) } else { positive.append(c) }
        }
        var p = RecalledParameters(source: .invokeAILegacy, prompt: positive.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
        p.negativePrompt = negative.isEmpty ? nil : negative.joined(separator: ", ")
        readSizeSeedStepsAndCFG(image, into: &p)
        p.sampler = image["sampler"] as? String
        p.model = m["model_weights"] as? String
        if let version = m["app_version"] as? String { p.extra.append(.init("app_version", version)) }
        return p
    }

    /// The keys both versions name alike.
    private static func readSizeSeedStepsAndCFG(_ m: [String: Any], into p: inout RecalledParameters) {
        (p.width, p.height) = (int(m["width"]), int(m["height"]))
        p.seed = ComfyUIParameters.seed(m["seed"])
        p.steps = int(m["steps"])
        p.guidanceScale = ComfyUIParameters.number(m["cfg_scale"])
    }

    static func int(_ value: Any?) -> Int? { ComfyUIParameters.number(value).flatMap { Int(exactly: $0) } }
}
