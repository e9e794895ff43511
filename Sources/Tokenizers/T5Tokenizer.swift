import Foundation

/// transformers 5.24's `T5Tokenizer` (`models/t5/tokenization_t5.py`, backed by huggingface/tokenizers), loaded
/// from a tokenizer folder: `tokenizer.json` when present, otherwise `spiece.model` (converted as
/// `TokenizersBackend._convert_from_sentencepiece` + `T5Converter.convert_from_spm` do: the pieces, then
/// `<extra_id_{n-1}>` … `<extra_id_0>`), plus `tokenizer_config.json`.
///
/// transformers rebuilds the pipeline in code, so from a tokenizer.json it takes only the vocabulary and the
/// `precompiled_charsmap`; any other normalizer step in the file (older conversions add
/// `Replace(" {2,}", " ")`) is dropped, the unknown id is always 2 (`Unigram(vocab, unk_id=2)`), and the
/// pre-tokenizer is always WhitespaceSplit + Metaspace. Per prompt: added tokens (`<pad>`, `</s>`, `<unk>`,
/// `<extra_id_N>`) are cut out of the raw text, each piece between them is normalized (`PrecompiledCharsmap`)
/// and split into words (`MetaspacePreTokenizer`), `Unigram` gives the ids, and the post-processor appends `</s>`.
public final class T5Tokenizer: Sendable {
    public let eosTokenId: Int
    public let padTokenId: Int
    public let unknownTokenId: Int
    /// `model_max_length` from the config (512 for SD3's tokenizer_3), nil when absent.
    public let modelMaxLength: Int?
    /// Pieces in the model vocabulary (sentinel tokens included when the vocabulary has them).
    /// One past the largest id `encode` can produce: what an embedding needs rows for.
    public var vocabularySize: Int { max(unigram.pieces.count, addedVocabulary.idLimit) }

    let unigram: Unigram
    let charsmap: PrecompiledCharsmap?
    let addedVocabulary: AddedVocabulary
    let cleanUpTokenizationSpaces: Bool

    static let acceptedClasses = ["T5Tokenizer", "T5TokenizerFast"]
    /// `T5Tokenizer.__init__` hard-codes the unknown id.
    static let unknownId = 2

    /// Loads `folder`. Throws `wrongKind` when its config names another tokenizer class or its tokenizer.json
    /// holds another model, `missingFile` when it has neither tokenizer.json nor spiece.model, `invalidFile` when
    /// a file cannot be parsed.
    public init(folder: URL) throws(TokenizerError) {
        let files = TokenizerFolder(url: folder)
        let config = try TokenizerConfig.read(files)
        try config.checkClass(Self.acceptedClasses, kind: "T5", folder: files)
        let source: T5Source
        if files.contains("tokenizer.json") {
            source = try T5Source(tokenizerJSON: files)
        } else if files.contains("spiece.model") {
            source = try T5Source(sentencePiece: files, extraIds: config.extraIds ?? 100)
        } else if files.contains("vocab.json") {
            throw .wrongKind(path: folder.path, expected: "T5", found: "a BPE folder (vocab.json)")
        } else {
            throw .missingFile(path: files.path("spiece.model"))
        }
        let unigram = Unigram(pieces: source.pieces, scores: source.scores, unknownId: Self.unknownId)
        let charsmap = source.charsmap

        // Added tokens in transformers' order: the saved added tokens, the named special tokens (T5Tokenizer's
        // defaults unless the config says otherwise), the extra special tokens, then the sentinels T5Tokenizer
        // generates when its additional special tokens name none.
        let eos = config.namedToken("eos_token") ?? AddedTokenSpec(content: "</s>")
        let unk = config.namedToken("unk_token") ?? AddedTokenSpec(content: "<unk>")
        let pad = config.namedToken("pad_token") ?? AddedTokenSpec(content: "<pad>")
        let defaults = ["eos_token": eos, "unk_token": unk, "pad_token": pad]
        var specs = config.addedTokensDecoder?.map(\.token) ?? source.addedTokens
        for name in TokenizerConfig.specialTokenNames {
            if let token = config.namedToken(name) ?? defaults[name] { specs.append(token) }
        }
        let additional = source.additionalSpecialTokens ?? config.additionalSpecialTokens
        specs += config.extraSpecialTokens + (additional ?? [])
        let extraIds = config.extraIds ?? 100
        if !(additional ?? []).contains(where: { $0.content.contains("<extra_id_") }) {
            specs += (0..<extraIds).map { AddedTokenSpec(content: "<extra_id_\($0)>") }
        }
        let normalize: (String) -> String = { charsmap?.normalize($0) ?? $0 }
        let added = AddedVocabulary(specs: specs, modelId: { unigram.id(of: Array($0.utf8)) },
                                          modelSize: source.pieces.count, normalize: normalize)

        func id(_ token: AddedTokenSpec) throws(TokenizerError) -> Int {
            guard let id = added.id(of: token.content) else {
                throw .invalidFile(path: source.path, reason: "no id for special token '\(token.content)'")
            }
            return id
        }
        addedVocabulary = added
        eosTokenId = try id(eos)
        padTokenId = try id(pad)
        unknownTokenId = Self.unknownId
        modelMaxLength = config.modelMaxLength
        cleanUpTokenizationSpaces = config.cleanUpTokenizationSpaces
        self.unigram = unigram
        self.charsmap = charsmap
    }

    /// `tokenizer(text)["input_ids"]`: the text's ids followed by `</s>`; no truncation, no padding.
    public func encode(_ text: String) -> [Int] {
        encodeContent(text) + [eosTokenId]
    }

    /// `tokenizer(text, padding="max_length", max_length=maxLength, truncation=True, add_special_tokens=True)` as
    /// SD3's pipeline calls it (maxLength = `max_sequence_length`, 256 by default, at most 512): at most
    /// `maxLength - 1` content ids, `</s>`, then `<pad>` up to `maxLength`.
    /// `removedTextStart` defaults to 76 because diffusers 0.42.1 decodes the T5 warning from
    /// `self.tokenizer_max_length - 1`, the CLIP length, whatever `max_sequence_length` is.
    public func encodeForPipeline(_ text: String, maxLength: Int = 256, removedTextStart: Int = 76) -> PipelineEncoding {
        PipelineEncoding.make(content: encodeContent(text), prefix: [], suffix: [eosTokenId], maxLength: maxLength,
                              padId: padTokenId, removedTextStart: removedTextStart, decode: decode)
    }

    /// transformers' `decode(ids)` with special tokens kept: added tokens by content, pieces by spelling, then the
    /// Metaspace decoder ("▁" → space, except that the first token drops its "▁"), then
    /// `clean_up_tokenization` when the config's `clean_up_tokenization_spaces` is true. Unknown ids are skipped.
    public func decode(_ ids: [Int]) -> String {
        var tokens: [String] = []
        for id in ids {
            if let content = addedVocabulary.content(of: id) {
                tokens.append(content)
            } else if id >= 0, id < unigram.pieces.count {
                tokens.append(String(decoding: unigram.pieces[id], as: UTF8.self))
            }
        }
        var text = String.UnicodeScalarView()
        for (index, token) in tokens.enumerated() {
            for scalar in token.unicodeScalars {
                if scalar == "\u{2581}" {
                    if index > 0 { text.append(" ") }
                } else {
                    text.append(scalar)
                }
            }
        }
        return cleanUpTokenizationSpaces ? Self.cleanUpTokenization(String(text)) : String(text)
    }

    /// The ids of the text alone, without `</s>`.
    func encodeContent(_ text: String) -> [Int] {
        var ids: [Int] = []
        let normalize: (String) -> String = { [charsmap] in charsmap?.normalize($0) ?? $0 }
        for segment in addedVocabulary.split(text, normalize: normalize) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let normalized):
                for word in MetaspacePreTokenizer.words(normalized) { ids += unigram.encode(word) }
            }
        }
        return ids
    }

    /// transformers' `clean_up_tokenization`: literal replacements, in this order.
    static func cleanUpTokenization(_ text: String) -> String {
        let rules = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
        var scalars = Array(text.unicodeScalars)
        for (target, replacement) in rules { scalars = ScalarText.replacing(target, with: replacement, in: scalars) }
        return ScalarText.string(scalars)
    }
}
