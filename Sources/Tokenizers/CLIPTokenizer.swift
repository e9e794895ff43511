import Foundation
import Inflate

/// transformers 5.24's `CLIPTokenizer` (`models/clip/tokenization_clip.py`, backed by huggingface/tokenizers),
/// loaded from a tokenizer folder: `vocab.json` + `merges.txt`, and `tokenizer_config.json` for the special
/// tokens (SD3's `tokenizer` pads with `<|endoftext|>`, `tokenizer_2` with `!`).
///
/// Pipeline per prompt: added tokens (the special tokens, and any `added_tokens_decoder` entry) are cut out
/// first; each piece between them is normalized and split (`CLIPPreTokenizer`), byte-level BPE gives the ids
/// (`BytePairEncoding`), and `RobertaProcessing` wraps them in `<|startoftext|>` … `<|endoftext|>`.
/// Because the pad token becomes an added token, a `!` typed in a `tokenizer_2` prompt is the token `!` (id 0)
/// rather than BPE's "!</w>" or "!!" merges (https://github.com/huggingface/diffusers/issues/4153); transformers
/// does the same.
public final class CLIPTokenizer: Sendable {
    public let bosTokenId: Int
    public let eosTokenId: Int
    public let padTokenId: Int
    public let padToken: String
    /// `model_max_length` from the config (77 for SD3's tokenizers), nil when absent.
    public let modelMaxLength: Int?
    /// Tokens in the model vocabulary.
    /// One past the largest id `encode` can produce (vocab.json may skip ids): what an embedding needs rows for.
    public var vocabularySize: Int { max(bpe.tokens.count, addedVocabulary.idLimit) }

    let bpe: BytePairEncoding
    let addedVocabulary: AddedVocabulary

    static let acceptedClasses = ["CLIPTokenizer", "CLIPTokenizerFast"]

    /// Loads `folder`. Throws `wrongKind` when its config names another tokenizer class, `missingFile` when
    /// vocab.json or merges.txt is absent, `invalidFile` when a file cannot be parsed.
    public convenience init(folder: URL) throws(TokenizerError) {
        let files = TokenizerFolder(url: folder)
        let config = try TokenizerConfig.read(files)
        try config.checkClass(Self.acceptedClasses, kind: "CLIP", folder: files)
        if !files.contains("vocab.json"), files.contains("spiece.model") {
            throw .wrongKind(path: folder.path, expected: "CLIP", found: "a SentencePiece folder (spiece.model)")
        }
        let vocab = try Self.readVocab(files)
        let text = try files.text("merges.txt")
        let merges = try Self.parseMerges(text, path: files.path("merges.txt"))
        let added = config.addedTokensDecoder != nil ? [] : try Self.tokenizerJSONAddedTokens(files)
        try self.init(vocab: vocab, merges: merges, config: config, fileAddedTokens: added, mergesPath: files.path("merges.txt"),
                      vocabPath: files.path("vocab.json"))
    }

    /// The CLIP vocabulary shipped with the app (open_clip's BPE merges, scripts/fixtures/clip_vocabulary.py), for
    /// checkpoints that carry no tokenizer, set up as SD3's tokenizers: CLIP-L pads with `<|endoftext|>`,
    /// CLIP-G with `!` (tokenizer_2/special_tokens_map.json of the SD3 repos); 77 tokens.
    public convenience init(bundledPaddingWith pad: String) throws(TokenizerError) {
        let files = try CLIPVocabularyFiles.bundled()
        let merges = try Self.parseMerges(files.merges, path: files.path)
        let (vocab, path) = (files.vocab, files.path)
        var config = TokenizerConfig()
        config.modelMaxLength = 77
        config.namedTokens = [("bos_token", AddedTokenSpec(content: "<|startoftext|>")), ("eos_token", AddedTokenSpec(content: "<|endoftext|>")),
                              ("unk_token", AddedTokenSpec(content: "<|endoftext|>")), ("pad_token", AddedTokenSpec(content: pad))]
        try self.init(vocab: vocab, merges: merges, config: config, fileAddedTokens: [], mergesPath: path, vocabPath: path)
    }

    private init(vocab: [String: Int], merges: (pairs: [(String, String)], lines: [Int]), config: TokenizerConfig,
                 fileAddedTokens: [AddedTokenSpec], mergesPath: String, vocabPath: String) throws(TokenizerError) {

        // CLIPTokenizer.__init__ defaults, overridden by the folder's config.
        let bos = config.namedToken("bos_token") ?? AddedTokenSpec(content: "<|startoftext|>")
        let eos = config.namedToken("eos_token") ?? AddedTokenSpec(content: "<|endoftext|>")
        let unk = config.namedToken("unk_token") ?? AddedTokenSpec(content: "<|endoftext|>")
        let pad = config.namedToken("pad_token") ?? AddedTokenSpec(content: "<|endoftext|>")
        bpe = try BytePairEncoding(vocab: vocab, merges: merges.pairs, unknownToken: unk.content) { rank in
            "\(mergesPath) line \(merges.lines[rank])"
        }

        var specs = config.addedTokensDecoder?.map(\.token) ?? fileAddedTokens
        let defaults = ["bos_token": bos, "eos_token": eos, "unk_token": unk, "pad_token": pad]
        for name in TokenizerConfig.specialTokenNames {
            if let token = config.namedToken(name) ?? defaults[name] { specs.append(token) }
        }
        specs += config.extraSpecialTokens + (config.additionalSpecialTokens ?? [])
        let added = AddedVocabulary(specs: specs, modelId: { vocab[$0] }, modelSize: vocab.count,
                                          normalize: CLIPPreTokenizer.normalize)

        func id(_ token: AddedTokenSpec) throws(TokenizerError) -> Int {
            guard let id = added.id(of: token.content) ?? vocab[token.content] else {
                throw .invalidFile(path: vocabPath, reason: "no id for special token '\(token.content)'")
            }
            return id
        }
        addedVocabulary = added
        bosTokenId = try id(bos)
        eosTokenId = try id(eos)
        padTokenId = try id(pad)
        padToken = pad.content
        modelMaxLength = config.modelMaxLength
    }

    /// `tokenizer(text)["input_ids"]`: `<|startoftext|>`, the text's ids, `<|endoftext|>`; no truncation, no padding.
    public func encode(_ text: String) -> [Int] {
        [bosTokenId] + encodeContent(text) + [eosTokenId]
    }

    /// `tokenizer(text, padding="max_length", max_length=maxLength, truncation=True)` as SD3's pipeline calls it:
    /// at most `maxLength - 2` content ids between the start and end tokens, padded with the pad token.
    /// `removedText` is the pipeline's warning text, decoded from `removedTextStart` (diffusers uses its
    /// `tokenizer_max_length - 1`, 76 for SD3; the default follows `maxLength - 1`).
    public func encodeForPipeline(_ text: String, maxLength: Int = 77, removedTextStart: Int? = nil) -> PipelineEncoding {
        PipelineEncoding.make(content: encodeContent(text), prefix: [bosTokenId], suffix: [eosTokenId],
                              maxLength: maxLength, padId: padTokenId,
                              removedTextStart: removedTextStart ?? maxLength - 1, decode: decode)
    }

    /// transformers' CLIP `decode(ids)` with special tokens kept: tokens joined, byte-level characters turned
    /// back into UTF-8 (invalid sequences become U+FFFD), then every `</w>` replaced by a space and the result
    /// stripped (the `_wrap_decode_method_backend_tokenizer` hook). Unknown ids are skipped, as in tokenizers.
    public func decode(_ ids: [Int]) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let content = addedVocabulary.content(of: id) {
                tokens.append(content)
            } else if id >= 0, id < bpe.tokens.count, let token = bpe.tokens[id] {
                tokens.append(token)
            }
        }
        let text = ScalarText.replacing("</w>", with: " ", in: Array(ByteLevel.decode(tokens).unicodeScalars))
        return ScalarText.string(ScalarText.pythonStripped(text))
    }

    /// The ids of the text alone, without start and end tokens.
    func encodeContent(_ text: String) -> [Int] {
        var ids: [Int] = []
        for segment in addedVocabulary.split(text, normalize: CLIPPreTokenizer.normalize) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let normalized):
                for word in CLIPPreTokenizer.words(normalized) { ids += bpe.encode(word: word) }
            }
        }
        return ids
    }

    // MARK: - Files

    /// Largest token id a vocab.json may use (CLIP's largest is 49407).
    static let maximumVocabularyId = 1 << 20

    private static func readVocab(_ files: TokenizerFolder) throws(TokenizerError) -> [String: Int] {
        let object = try files.jsonObject("vocab.json")
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(object.count)
        for (token, value) in object {
            guard let number = value as? NSNumber, let id = Int(exactly: number.doubleValue), id >= 0 else {
                throw .invalidFile(path: files.path("vocab.json"), reason: "the id of '\(token)' is not a non-negative integer")
            }
            // The id → token table is as long as the largest id, and merges pack ids in 32 bits.
            guard id < Self.maximumVocabularyId else {
                throw .invalidFile(path: files.path("vocab.json"), reason: "the id of '\(token)' is \(id), above the limit of \(Self.maximumVocabularyId)")
            }
            vocab[token] = id
        }
        return vocab
    }

    /// merges.txt as tokenizers reads it (`convert_merges_to_hashmap`): lines starting with "#version" are
    /// skipped, every other line must be two symbols separated by one space; rank = order.
    private static func parseMerges(_ text: String, path: String) throws(TokenizerError) -> (pairs: [(String, String)], lines: [Int]) {
        var pairs: [(String, String)] = []
        var lineNumbers: [Int] = []
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (offset, line) in lines.enumerated() {
            let content = line.last == "\r" ? line.dropLast() : line[...]
            if content.starts(with: "#version".unicodeScalars) { continue }
            let parts = content.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw .invalidFile(path: path, reason: "line \(offset + 1) is not two symbols separated by a space")
            }
            pairs.append((String(String.UnicodeScalarView(parts[0])), String(String.UnicodeScalarView(parts[1]))))
            lineNumbers.append(offset + 1)
        }
        return (pairs, lineNumbers)
    }

    /// tokenizer.json's `added_tokens`, which transformers reads when the config has no `added_tokens_decoder`.
    private static func tokenizerJSONAddedTokens(_ files: TokenizerFolder) throws(TokenizerError) -> [AddedTokenSpec] {
        guard files.contains("tokenizer.json") else { return [] }
        return try TokenizerJSON.read(files).addedTokenSpecs
    }
}

/// The shipped CLIP vocabulary as the two files a transformers CLIP tokenizer folder has.
public enum CLIPVocabularyFiles {
    /// vocab.json's content (built from the merges as open_clip's SimpleTokenizer does: byte symbols, the same with
    /// </w>, one token per merge, then the two specials) and merges.txt's text.
    public static func bundled() throws(TokenizerError) -> (vocab: [String: Int], merges: String, path: String) {
        guard let url = Bundle.module.url(forResource: "clip-bpe-merges.txt", withExtension: "gz") else {
            throw .missingFile(path: "clip-bpe-merges.txt.gz (the app's resource bundle)")
        }
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .invalidFile(path: path, reason: "cannot be read") }
        guard let bytes = Inflate.decompress([UInt8](data), format: .gzip), let text = String(bytes: bytes, encoding: .utf8) else {
            throw .invalidFile(path: path, reason: "not a gzip file of UTF-8 text")
        }
        let pairs = text.split(separator: "\n").dropFirst().map { line in line.split(separator: " ").joined() }
        let symbols = ByteLevel.openCLIPOrder.map { String(ByteLevel.byteToScalar[Int($0)]) }
        let tokens = symbols + symbols.map { $0 + "</w>" } + pairs + ["<|startoftext|>", "<|endoftext|>"]
        return (Dictionary(tokens.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first }), text, path)
    }
}
