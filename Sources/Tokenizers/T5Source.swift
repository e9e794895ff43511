import Foundation

/// What a T5 tokenizer folder provides before transformers' `T5Tokenizer.__init__` builds the pipeline:
/// the unigram vocabulary, the precompiled charsmap and the added tokens the file itself lists.
struct T5Source {
    var pieces: [[UInt8]] = []
    var scores: [Double] = []
    var charsmap: PrecompiledCharsmap?
    /// tokenizer.json `added_tokens`, used when the config has no `added_tokens_decoder` (transformers'
    /// legacy branch of `from_pretrained`); empty for spiece.model.
    var addedTokens: [AddedTokenSpec] = []
    /// spiece.model's control and user-defined pieces, which `SentencePieceExtractor.extract` passes as
    /// `additional_special_tokens` (replacing the config's list); nil for tokenizer.json.
    var additionalSpecialTokens: [AddedTokenSpec]?
    /// The file read, for error messages.
    var path: String

    /// tokenizer.json: `model.vocab` as [piece, score] pairs and the first `Precompiled` normalizer's charsmap
    /// (`TokenizersBackend.convert_to_native_format`).
    init(tokenizerJSON files: TokenizerFolder) throws(TokenizerError) {
        path = files.path("tokenizer.json")
        let json = try files.jsonObject("tokenizer.json")
        guard let model = json["model"] as? [String: Any] else {
            throw .invalidFile(path: path, reason: "no \"model\" object")
        }
        let type = model["type"] as? String ?? "untyped"
        guard type == "Unigram" else {
            throw .wrongKind(path: files.url.path, expected: "T5", found: "a \(type) model in tokenizer.json")
        }
        guard let vocab = model["vocab"] as? [Any], !vocab.isEmpty else {
            throw .invalidFile(path: path, reason: "model.vocab is not a non-empty list")
        }
        pieces.reserveCapacity(vocab.count)
        scores.reserveCapacity(vocab.count)
        for (index, entry) in vocab.enumerated() {
            guard let pair = entry as? [Any], pair.count == 2, let piece = pair[0] as? String,
                  let score = pair[1] as? NSNumber else {
                throw .invalidFile(path: path, reason: "model.vocab[\(index)] is not a [piece, score] pair")
            }
            pieces.append(Array(piece.utf8))
            scores.append(score.doubleValue)
        }
        if let encoded = Self.precompiledCharsmap(json["normalizer"]) {
            guard let data = Data(base64Encoded: encoded) else {
                throw .invalidFile(path: path, reason: "precompiled_charsmap is not base64")
            }
            charsmap = try Self.charsmap([UInt8](data), path: path)
        }
        addedTokens = ((json["added_tokens"] as? [[String: Any]]) ?? [])
            .sorted { (($0["id"] as? Int) ?? 0) < (($1["id"] as? Int) ?? 0) }
            .compactMap { AddedTokenSpec(json: $0) }
    }

    /// spiece.model: the pieces with their float scores, then `extraIds` sentinels with score 0 in descending
    /// order (`T5Converter.convert_from_spm`), and the normalizer spec's charsmap.
    init(sentencePiece files: TokenizerFolder, extraIds: Int) throws(TokenizerError) {
        path = files.path("spiece.model")
        let model: SentencePieceModel
        do {
            model = try SentencePieceModel([UInt8](try files.data("spiece.model")))
        } catch let error as ProtobufError {
            throw .invalidFile(path: path, reason: "not a SentencePiece model (\(error.reason))")
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw .invalidFile(path: path, reason: "\(error)")
        }
        for piece in model.pieces {
            pieces.append(Array(piece.piece.utf8))
            scores.append(Double(piece.score))
        }
        for index in stride(from: extraIds - 1, through: 0, by: -1) {
            pieces.append(Array("<extra_id_\(index)>".utf8))
            scores.append(0)
        }
        if !model.precompiledCharsmap.isEmpty {
            charsmap = try Self.charsmap(model.precompiledCharsmap, path: path)
        }
        additionalSpecialTokens = model.pieces.compactMap { piece in
            switch piece.type {
            case .control: return AddedTokenSpec(content: piece.piece, special: true, normalized: false)
            case .userDefined: return AddedTokenSpec(content: piece.piece, special: false, normalized: false)
            default: return nil
            }
        }
    }

    private static func precompiledCharsmap(_ normalizer: Any?) -> String? {
        guard let normalizer = normalizer as? [String: Any] else { return nil }
        let steps = normalizer["type"] as? String == "Sequence"
            ? (normalizer["normalizers"] as? [[String: Any]] ?? []) : [normalizer]
        return steps.first { $0["type"] as? String == "Precompiled" }?["precompiled_charsmap"] as? String
    }

    private static func charsmap(_ bytes: [UInt8], path: String) throws(TokenizerError) -> PrecompiledCharsmap {
        do {
            return try PrecompiledCharsmap(bytes)
        } catch {
            throw .invalidFile(path: path, reason: error.description)
        }
    }
}
