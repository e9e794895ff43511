import Foundation
import RegularFiles

/// Reads the files of one tokenizer folder (`tokenizer/`, `tokenizer_2/`, `tokenizer_3/` of a diffusers model),
/// turning every failure into a `TokenizerError` that names the file.
struct TokenizerFolder {
    let url: URL

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func contains(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    /// Largest tokenizer file read (T5's tokenizer.json is 2.4 MB, CLIP's vocab.json 1.6 MB).
    static let sizeLimit = 256 << 20

    func data(_ name: String) throws(TokenizerError) -> Data {
        let file = path(name)
        guard contains(name) else { throw .missingFile(path: file) }
        do { return Data(try RegularFile.contents(file, limit: Self.sizeLimit)) } catch { throw .invalidFile(path: file, reason: error.reason) }
    }

    func text(_ name: String) throws(TokenizerError) -> String {
        let bytes = try data(name)
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw .invalidFile(path: path(name), reason: "not UTF-8 text")
        }
        return text
    }

    /// A JSON file whose top level is an object.
    func jsonObject(_ name: String) throws(TokenizerError) -> [String: Any] {
        let bytes = try data(name)
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: bytes, options: [])
        } catch {
            throw .invalidFile(path: path(name), reason: "invalid JSON (\(Self.describe(error)))")
        }
        guard let object = value as? [String: Any] else {
            throw .invalidFile(path: path(name), reason: "expected a JSON object at the top level")
        }
        return object
    }

    /// Foundation's JSON errors keep their useful text in the user info, not in `localizedDescription`.
    private static func describe(_ error: Error) -> String {
        let nsError = error as NSError
        if let detail = nsError.userInfo[NSDebugDescriptionErrorKey] as? String { return detail }
        return nsError.localizedDescription
    }
}

/// The few settings transformers takes from `tokenizer_config.json` (and, for folders saved by older
/// transformers, from `special_tokens_map.json`), following `PreTrainedTokenizerBase.from_pretrained` in
/// transformers 5.24 `tokenization_utils_base.py`.
struct TokenizerConfig {
    var tokenizerClass: String?
    var modelMaxLength: Int?
    /// bos/eos/unk/sep/pad/cls/mask tokens, in transformers' `SPECIAL_TOKENS_ATTRIBUTES` order.
    var namedTokens: [(name: String, token: AddedTokenSpec)] = []
    /// `added_tokens_decoder` (id → token) when the config has it.
    var addedTokensDecoder: [(id: Int, token: AddedTokenSpec)]?
    /// `extra_special_tokens` (transformers 5) and `additional_special_tokens` (transformers 4).
    var extraSpecialTokens: [AddedTokenSpec] = []
    var additionalSpecialTokens: [AddedTokenSpec]?
    var extraIds: Int?
    var cleanUpTokenizationSpaces = false

    static let specialTokenNames = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                                    "mask_token"]

    /// Reads the folder's config; a folder without `tokenizer_config.json` gets transformers' defaults.
    static func read(_ folder: TokenizerFolder) throws(TokenizerError) -> TokenizerConfig {
        var config = TokenizerConfig()
        var values: [String: Any] = [:]
        if folder.contains("tokenizer_config.json") { values = try folder.jsonObject("tokenizer_config.json") }
        let file = folder.path("tokenizer_config.json")
        config.tokenizerClass = values["tokenizer_class"] as? String
        // transformers writes 1e30 for "no limit"; a count below 1 cannot size a sequence.
        if let length = values["model_max_length"] as? NSNumber, length.doubleValue < 1e15 {
            guard length.doubleValue >= 1, length.doubleValue == length.doubleValue.rounded() else {
                throw .invalidFile(path: file, reason: "model_max_length is \(length); it must be a whole number ≥ 1")
            }
            config.modelMaxLength = length.intValue
        }
        // T5Tokenizer makes this many sentinel tokens: a huge count would never finish.
        if let extraIds = values["extra_ids"] as? NSNumber {
            guard (0...100_000).contains(extraIds.doubleValue), extraIds.doubleValue == extraIds.doubleValue.rounded() else {
                throw .invalidFile(path: file, reason: "extra_ids is \(extraIds); it must be a whole number between 0 and 100000")
            }
            config.extraIds = extraIds.intValue
        }
        config.cleanUpTokenizationSpaces = (values["clean_up_tokenization_spaces"] as? Bool) ?? false
        if let decoder = values["added_tokens_decoder"] as? [String: Any] {
            var entries: [(id: Int, token: AddedTokenSpec)] = []
            for (key, value) in decoder {
                guard let id = Int(key), let token = AddedTokenSpec(json: value) else {
                    throw .invalidFile(path: file, reason: "added_tokens_decoder entry \(key) is not a token")
                }
                entries.append((id, token))
            }
            config.addedTokensDecoder = entries.sorted { $0.id < $1.id }
        } else if folder.contains("special_tokens_map.json") {
            // Legacy folders: special_tokens_map.json overrides the config's named tokens.
            for (key, value) in try folder.jsonObject("special_tokens_map.json") { values[key] = value }
        }
        for name in specialTokenNames {
            if let token = AddedTokenSpec(json: values[name] as Any) { config.namedTokens.append((name, token)) }
        }
        config.extraSpecialTokens = (values["extra_special_tokens"] as? [Any])?.compactMap(AddedTokenSpec.init) ?? []
        config.additionalSpecialTokens = (values["additional_special_tokens"] as? [Any])?.compactMap(AddedTokenSpec.init)
        return config
    }

    func namedToken(_ name: String) -> AddedTokenSpec? { namedTokens.first { $0.name == name }?.token }

    /// Throws `wrongKind` unless the config's `tokenizer_class` is one of `accepted` (a folder without the key passes).
    func checkClass(_ accepted: [String], kind: String, folder: TokenizerFolder) throws(TokenizerError) {
        guard let tokenizerClass, !accepted.contains(tokenizerClass) else { return }
        throw .wrongKind(path: folder.url.path, expected: kind, found: tokenizerClass)
    }
}
