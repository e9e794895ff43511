import Foundation

/// diffusers' `lora_adapter_metadata`: each component's peft `LoraConfig`, as one JSON object in the safetensors
/// header with keys `<component>.<field>` (diffusers 0.42.1 `loaders/lora_base.py`, `_pack_dict_with_prefix`).
/// diffusers builds the adapter from it, so peft's scale applies: lora_alpha / r, or lora_alpha / √r with
/// `use_rslora`, where `rank_pattern` / `alpha_pattern` entries override r / lora_alpha for modules whose name ends
/// in the pattern (peft `utils/other.py` `get_pattern_key`: the regex `(.*\.)?(PATTERN)$`, first entry wins).
/// Patterns are matched as literal module names (what diffusers writes): a regex from a file could backtrack for
/// ever, so one with regular-expression syntax beyond the dots of a module path is refused.
struct LoraAdapterMetadata {
    static let headerKey = "lora_adapter_metadata"
    let fields: [String: Any]

    init?(header: [String: String], path: String) throws {
        guard let text = header[Self.headerKey] else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw LoraError.badAdapterMetadata(path: path, reason: "lora_adapter_metadata is not a JSON object")
        }
        fields = object
    }

    init(fields: [String: Any]) { self.fields = fields }

    /// The scale of `module` (a name inside `component`, e.g. `transformer_blocks.0.attn.to_q`), or nil when the
    /// metadata says nothing about the component (then diffusers uses alpha = r: scale 1).
    func scale(component: String, module: String, rank: Int, path: String) throws -> Float? {
        func field(_ name: String) -> Any? { fields[component + "." + name] }
        guard let r = Self.number(field("r")) else { return nil }
        let alpha = Self.number(field("lora_alpha")) ?? r
        let rankUsed = try Self.pattern(field("rank_pattern"), module, path: path) ?? r
        let alphaUsed = try Self.pattern(field("alpha_pattern"), module, path: path) ?? alpha
        // Checked before Int(…): Int(1e300) traps.
        for (name, value) in [("r", rankUsed), ("lora_alpha", alphaUsed)] where !value.isFinite || abs(value) > 65536 {
            throw LoraError.badAdapterMetadata(path: path, reason: "\(component).\(name) for \(module) is \(value); it must be a finite number within ±65536")
        }
        guard rankUsed > 0, Int(rankUsed) == rank else {
            throw LoraError.badAdapterMetadata(path: path, reason: "\(component).\(module) has rank \(rank), its metadata says \(String(format: "%g", rankUsed))")
        }
        let rslora = (field("use_rslora") as? Bool) ?? (field("use_rslora") as? NSNumber)?.boolValue ?? false
        return Float(rslora ? alphaUsed / rankUsed.squareRoot() : alphaUsed / rankUsed)
    }

    static func number(_ value: Any?) -> Double? {
        switch value {
        case let v as Int: return Double(v)
        case let v as Double: return v
        case let v as NSNumber: return v.doubleValue
        default: return nil
        }
    }

    static func pattern(_ table: Any?, _ module: String, path: String) throws -> Double? {
        guard let table = table as? [String: Any] else { return nil }
        // peft iterates the dict in insertion order; JSON objects lose it, so a name matching two patterns is refused.
        var found: [(String, Double)] = []
        for (key, value) in table {
            guard !key.isEmpty, !key.contains(where: { "*+?()[]{}|^$\\".contains($0) }) else {
                throw LoraError.badAdapterMetadata(path: path, reason: "pattern '\(key)' uses regular-expression syntax; only module names are supported")
            }
            // (.*\.)?(KEY)$ with KEY's dots taken literally: the whole name, or a suffix after a dot.
            if module == key || module.hasSuffix("." + key), let number = number(value) {
                found.append((key, number))
            }
        }
        if found.count > 1, Set(found.map(\.1)).count > 1 {
            throw LoraError.badAdapterMetadata(path: path, reason: "\(module) matches patterns \(found.map(\.0).sorted()) with different values")
        }
        return found.first?.1
    }
}
