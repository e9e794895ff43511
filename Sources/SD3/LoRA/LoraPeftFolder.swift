import Foundation
import RegularFiles

/// A LoRA saved by peft's `PeftModel.save_pretrained` (jasperai/flash-sd3): a folder with `adapter_config.json` (the
/// `LoraConfig`: r, lora_alpha, rank/alpha patterns, use_rslora) and `adapter_model.safetensors`, whose keys are
/// `base_model.model.<module>.lora_A.weight` / `lora_B.weight` (peft `utils/save_and_load.py` drops the adapter name).
/// `PeftModel.from_pretrained(transformer, folder)` applies it to the SD3 transformer at scale lora_alpha / r.
struct LoraPeftFolder {
    static let configName = "adapter_config.json"
    static let weightsName = "adapter_model.safetensors"
    /// The key prefix peft writes before the wrapped model's module names.
    static let keyPrefix = "base_model.model."

    let weights: String
    /// The folder's name: what a PNG records and `--lora` finds again.
    let name: String
    let metadata: LoraAdapterMetadata

    /// The PEFT folder `path` names (a folder with adapter_config.json, or its adapter_model.safetensors), or nil for
    /// any other path (a folder without the config is not a LoRA: the safetensors reader refuses it by name).
    init?(_ path: String) throws {
        var isDirectory: ObjCBool = false
        let folder: String
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
           FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(Self.configName)) {
            folder = path
        } else if (path as NSString).lastPathComponent == Self.weightsName,
                  FileManager.default.fileExists(atPath: ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(Self.configName)) {
            folder = (path as NSString).deletingLastPathComponent
        } else {
            return nil
        }
        let configPath = (folder as NSString).appendingPathComponent(Self.configName)
        weights = (folder as NSString).appendingPathComponent(Self.weightsName)
        name = ((folder as NSString).standardizingPath as NSString).lastPathComponent
        guard RegularFile.problem(configPath) == nil, RegularFile.problem(weights) == nil else {
            throw LoraError.badAdapterMetadata(path: path, reason: "a PEFT LoRA folder needs the files \(Self.configName) and \(Self.weightsName)")
        }
        let data: Data
        do { data = Data(try RegularFile.contents(configPath, limit: 1 << 20, what: "PEFT adapter config")) } catch {
            throw LoraError.badAdapterMetadata(path: configPath, reason: error.description)
        }
        guard let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw LoraError.badAdapterMetadata(path: configPath, reason: "not a JSON object")
        }
        if let type = config["peft_type"], (type as? String) != "LORA" {
            throw LoraError.badAdapterMetadata(path: configPath, reason: "peft_type is \(type), only LORA is supported")
        }
        for flag in ["use_dora", "lora_bias"] where (config[flag] as? Bool) == true {
            throw LoraError.badAdapterMetadata(path: configPath, reason: "\(flag) is true, which is not supported")
        }
        guard LoraAdapterMetadata.number(config["r"]) != nil else {
            throw LoraError.badAdapterMetadata(path: configPath, reason: "no number for r")
        }
        // The same fields diffusers packs as `transformer.<field>` into lora_adapter_metadata.
        metadata = LoraAdapterMetadata(fields: Dictionary(uniqueKeysWithValues: config.map { ("transformer." + $0.key, $0.value) }))
    }
}
