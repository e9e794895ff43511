import Foundation

/// A1111's infotext, as its `parse_generation_parameters` reads it (modules/infotext_utils.py; peers.md §4):
/// prompt lines, an optional `Negative prompt:` part, and a last line of `Key: value` pairs that counts as
/// parameters only when it has at least three. stable-diffusion.cpp writes the same layout
/// (examples/common/common.cpp `get_image_params`) with `Version: stable-diffusion.cpp`.
enum A1111Parameters {
    /// A1111's `re_param`.
    static let pair = try! NSRegularExpression(pattern: #"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#)

    static func pairs(_ line: String) -> [RecalledParameters.Pair] {
        let ns = line as NSString
        return pair.matches(in: line, range: NSRange(location: 0, length: ns.length)).map { match in
            let key = ns.substring(with: match.range(at: 1)).trimmingCharacters(in: .whitespaces)
            var value = ns.substring(with: match.range(at: 2)).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), let decoded = try? JSONDecoder().decode(String.self, from: Data(value.utf8)) { value = decoded }
            return RecalledParameters.Pair(key, value)
        }
    }

    static func parse(_ text: String, name: String) throws(StoreError) -> RecalledParameters {
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n")
        var found: [RecalledParameters.Pair] = []
        if let last = lines.last, pairs(last).count >= 3 {
            found = pairs(last)
            lines.removeLast()
        }
        guard !found.isEmpty else { throw StoreError("\(name): its parameters chunk has no `Key: value` line (steps, seed, …)") }
        var prompt: [String] = [], negative: [String] = []
        var inNegative = false
        for line in lines {
            if line.hasPrefix("Negative prompt:") {
                inNegative = true
                negative.append(String(line.dropFirst(16)).trimmingCharacters(in: .whitespaces))
            } else if inNegative {
                negative.append(line)
            } else {
                prompt.append(line)
            }
        }
        let version = found.first { $0.key == "Version" }?.value ?? ""
        let source: RecalledParameters.Source = version.hasPrefix("stable-diffusion.cpp") ? .stableDiffusionCpp
            : version.hasPrefix("sd3-studio") ? .sd3Studio : .a1111
        var p = RecalledParameters(source: source, prompt: prompt.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines))
        p.negativePrompt = negative.isEmpty ? nil : negative.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
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
            default: p.extra.append(pair)
            }
        }
        return p
    }
}
