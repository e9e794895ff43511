import Foundation

/// A1111's infotext, as its `parse_generation_parameters` reads it (modules/infotext_utils.py; peers.md §4): prompt
/// lines, an optional `Negative prompt:` part, and a last line of `Key: value` pairs that counts as parameters only
/// when it has at least three. Forge and stable-diffusion.cpp (examples/common/common.cpp `get_image_params`, with
/// `Version: stable-diffusion.cpp`) write the same layout, and so do we (`Version: sd3-studio …`).
enum A1111Reader {
    static func parse(_ text: String, latin1: Bool, name: String) throws(MetadataError) -> RecalledParameters {
        // sd.cpp writes UTF-8 bytes into tEXt (Latin-1 by the PNG spec); only its text is taken back as UTF-8.
        let text = latin1 && text.contains("Version: stable-diffusion.cpp") ? utf8Repaired(text) : text
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n")
        var found: [RecalledParameters.Pair] = []
        if let last = lines.last {
            let pairs = A1111Infotext.pairs(last)
            if pairs.count >= 3 {
                found = pairs
                lines.removeLast()
            }
        }
        guard !found.isEmpty else { throw MetadataError("\(name): its parameters chunk has no `Key: value` line (steps, seed, …)") }
        var prompt: [String] = [], negative: [String] = []
        var inNegative = false
        for line in lines {
            if line.hasPrefix("Negative prompt:") {
                inNegative = true
                negative.append(String(line.dropFirst(16)).trimmingSpaces)
            } else if inNegative {
                negative.append(line)
            } else {
                prompt.append(line)
            }
        }
        let version = found.first { $0.key == "Version" }?.value ?? ""
        let source: RecalledParameters.Source = version.hasPrefix("stable-diffusion.cpp") ? .stableDiffusionCpp
            : version.hasPrefix("sd3-studio") ? .sd3Studio : .a1111
        let (positive, tags) = loraTags(prompt.joined(separator: "\n"))
        var p = RecalledParameters(source: source, prompt: positive.trimmingSpaces)
        p.negativePrompt = negative.isEmpty ? nil : negative.joined(separator: "\n").trimmingSpaces
        var hashes: [String: String] = [:]
        for pair in found {
            let v = pair.value
            switch pair.key {
            case "Steps": p.steps = Int(v)
            case "CFG scale": p.guidanceScale = Double(v)
            case "Seed": p.seed = UInt64(v)
            case "Size":
                let parts = v.split(separator: "x").compactMap { Int($0) }
                if parts.count == 2 { (p.width, p.height) = (parts[0], parts[1]) }
            case "Sampler": p.sampler = v
            case "Schedule type": p.scheduler = v
            case "Shift": p.shift = Double(v)
            case "Model": p.model = v
            case "Denoising strength": p.strength = Double(v)
            case "Variation seed": p.variationSeed = UInt64(v)
            case "Variation seed strength": p.variationStrength = Double(v)
            case "Lora hashes":
                // "name: hash, name: hash" (extensions-builtin/Lora/scripts/lora_script.py); kept as written too.
                for item in v.split(separator: ",") {
                    let parts = item.split(separator: ":", maxSplits: 1).map { String($0).trimmingSpaces }
                    if parts.count == 2 { hashes[parts[0]] = parts[1] }
                }
                p.extra.append(pair)
            default: p.extra.append(pair)
            }
        }
        p.loras = tags.map { RecalledParameters.Lora(name: $0.name, strength: $0.strength, hash: hashes[$0.name]) }
        if source == .sd3Studio, !hashes.isEmpty, tags.isEmpty {
            p.warnings.append("Lora hashes name \(hashes.count) LoRA(s) but the prompt has no <lora:…> tags: strengths unknown")
        }
        return p
    }

    /// `<lora:NAME>`, `<lora:NAME:W>` or `<lora:NAME:W_TE:W_UNET>` (A1111 extensions-builtin/Lora, extra network
    /// syntax `<name:arg:arg>`; `lyco` is the LyCORIS spelling): the prompt without the tags, and each tag's name and
    /// first weight (1 when none).
    static func loraTags(_ prompt: String) -> (prompt: String, tags: [(name: String, strength: Double)]) {
        // One pass over the scalars: a tag ends at the first `>`, and a `<` or line break before it means no tag there,
        // so each scalar is looked at a bounded number of times.
        let text = Array(prompt.unicodeScalars)
        var out = String.UnicodeScalarView(), tags: [(name: String, strength: Double)] = []
        var i = 0
        while i < text.count {
            guard text[i] == "<", i + 6 <= text.count,
                  String(String.UnicodeScalarView(text[i + 1..<i + 6])) == "lora:" || String(String.UnicodeScalarView(text[i + 1..<i + 6])) == "lyco:" else {
                out.append(text[i])
                i += 1
                continue
            }
            var close = i + 6
            while close < text.count, text[close] != ">", text[close] != "<", text[close] != "\n" { close += 1 }
            let fields = close < text.count && text[close] == ">"
                ? String(String.UnicodeScalarView(text[i + 6..<close])).split(separator: ":", omittingEmptySubsequences: false).map(String.init) : []
            let weight = fields.count > 1 ? Double(fields[1].trimmingSpaces) : 1
            guard let name = fields.first, !name.isEmpty, let weight, weight.isFinite else {
                out.append(text[i])
                i += 1
                continue
            }
            tags.append((name, weight))
            // The one space written before a tag (ours, and "a, <lora:x:1>" as users type it) goes with it.
            if out.last == " " { out.removeLast() }
            i = close + 1
        }
        return tags.isEmpty ? (prompt, []) : (String(out), tags)
    }

    /// Text whose code points are all bytes and which is valid UTF-8 as bytes, taken as UTF-8 (peers.md §4: sd.cpp
    /// writes UTF-8 into tEXt). Only called for sd.cpp's chunks, so a Latin-1 `Ã©` from any other tool stays.
    static func utf8Repaired(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard scalars.contains(where: { $0.value >= 0x80 }), scalars.allSatisfy({ $0.value <= 0xFF }) else { return text }
        return String(validating: scalars.map { UInt8($0.value) }, as: UTF8.self) ?? text
    }
}
