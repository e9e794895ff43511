/// InvokeAI 2.x: `sd-metadata`, `{"model_weights", "model_hash", "app_version", "image": {"prompt": [{"prompt",
/// "weight"}] or a string, "steps", "cfg_scale", "width", "height", "seed", "sampler"}}`, and the older `Dream` chunk,
/// its command line (`"prompt [negative]" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms`, ldm/invoke/args.py).
/// In both the negative prompt is the `[bracketed]` parts of the prompt.
enum InvokeAILegacyReader {
    static func parse(_ text: String, name: String) throws(MetadataError) -> RecalledParameters {
        guard let m = JSONValue.parse(text), m.object != nil else { throw MetadataError("\(name): its sd-metadata chunk is not a JSON object") }
        guard let image = m["image"], image.object != nil else { throw MetadataError("\(name): its sd-metadata chunk has no \"image\" object") }
        let whole = image["prompt"]?.array.map { $0.compactMap { $0["prompt"]?.string }.joined(separator: " ") } ?? image["prompt"]?.string ?? ""
        var p = prompts(whole, source: .invokeAILegacy)
        (p.width, p.height, p.seed, p.steps) = (image["width"]?.int, image["height"]?.int, image["seed"]?.seed, image["steps"]?.int)
        p.guidanceScale = image["cfg_scale"]?.double
        p.sampler = image["sampler"]?.string
        p.strength = image["strength"]?.double
        p.model = m["model_weights"]?.string
        if let hash = m["model_hash"]?.string { p.extra.append(.init("model_hash", hash)) }
        if let version = m["app_version"]?.string { p.extra.append(.init("app_version", version)) }
        if let variations = image["variations"]?.array, !variations.isEmpty { p.warnings.append("\(variations.count) variation(s) were applied; not recalled") }
        return p
    }

    /// The `Dream` command line: a quoted prompt, then `-x value` options.
    static func parse(dream text: String, name: String) throws(MetadataError) -> RecalledParameters {
        let scalars = Array(text.trimmingSpaces.unicodeScalars)
        guard scalars.first == "\"", let close = scalars.indices.dropFirst().last(where: { scalars[$0] == "\"" }) else {
            throw MetadataError("\(name): its Dream chunk has no quoted prompt")
        }
        var p = prompts(String(String.UnicodeScalarView(scalars[1..<close])), source: .invokeAILegacy)
        let words = String(String.UnicodeScalarView(scalars[(close + 1)...])).split(separator: " ").map(String.init)
        var index = 0
        while index < words.count {
            let option = words[index]
            var values: [String] = []
            index += 1
            while index < words.count, !(words[index].hasPrefix("-") && Double(words[index]) == nil) { values.append(words[index]); index += 1 }
            let v = values.first ?? ""
            switch option {
            case "-s": p.steps = Int(v)
            case "-S": p.seed = UInt64(v)
            case "-W": p.width = Int(v)
            case "-H": p.height = Int(v)
            case "-C": p.guidanceScale = Double(v)
            case "-A": p.sampler = v
            case "-f": p.strength = Double(v)
            default: p.extra.append(.init(String(option.drop { $0 == "-" }), values.joined(separator: " ")))
            }
        }
        return p
    }

    /// "a cat [blurry, dark], on a mat": the bracketed parts are the negative prompt, the rest the prompt.
    static func prompts(_ whole: String, source: RecalledParameters.Source) -> RecalledParameters {
        var positive = "", negative: [String] = [], depth = 0, current = ""
        for c in whole {
            if c == "[" { depth += 1; if depth == 1 { current = "" }; continue }
            if c == "]", depth > 0 { depth -= 1; if depth == 0 { negative.append(current.trimmingSpaces) }; continue }
            if depth > 0 { current.append(c) } else { positive.append(c) }
        }
        var p = RecalledParameters(source: source, prompt: positive.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
        p.negativePrompt = negative.isEmpty ? nil : negative.joined(separator: ", ")
        return p
    }
}
