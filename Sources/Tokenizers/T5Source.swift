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
        let json = try TokenizerJSON.read(files)
        guard let model = json.model else { throw .invalidFile(path: path, reason: "no \"model\" object") }
        guard model.type == "Unigram", let vocab = model.unigramVocab else {
            throw .wrongKind(path: files.url.path, expected: "T5", found: "a \(model.type ?? "untyped") model in tokenizer.json")
        }
        guard !vocab.isEmpty else { throw .invalidFile(path: path, reason: "model.vocab is empty") }
        pieces = vocab.map { Array($0.piece.utf8) }
        scores = vocab.map(\.score)
        if let encoded = json.precompiledCharsmap {
            guard let data = Data(base64Encoded: encoded) else {
                throw .invalidFile(path: path, reason: "precompiled_charsmap is not base64")
            }
            charsmap = try Self.charsmap([UInt8](data), path: path)
        }
        addedTokens = json.addedTokenSpecs
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

    private static func charsmap(_ bytes: [UInt8], path: String) throws(TokenizerError) -> PrecompiledCharsmap {
        do {
            return try PrecompiledCharsmap(bytes)
        } catch {
            throw .invalidFile(path: path, reason: error.description)
        }
    }
}
