import Foundation

/// The parts of a huggingface `tokenizer.json` transformers 5.24 reads for T5 and CLIP: the model's type and
/// Unigram vocabulary, the `Precompiled` normalizer's charsmap and the `added_tokens` list.
///
/// Read with `JSONDecoder`, whose numbers are correctly rounded: Foundation's `JSONSerialization` on Linux parses
/// "-3.9893898963928223" one ulp off, which flips Viterbi ties between equal-scoring segmentations
/// (".." + "." against "." + "..") away from tokenizers' choice.
struct TokenizerJSON: Decodable {
    struct Model: Decodable {
        var type: String?
        /// `[piece, score]` pairs; read only for a Unigram model (a BPE vocabulary is an object).
        var unigramVocab: [UnigramPiece]?

        private enum CodingKeys: String, CodingKey { case type, vocab }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            type = try container.decodeIfPresent(String.self, forKey: .type)
            unigramVocab = type == "Unigram" ? try container.decode([UnigramPiece].self, forKey: .vocab) : nil
        }
    }

    struct UnigramPiece: Decodable {
        var piece: String
        var score: Double

        init(from decoder: Decoder) throws {
            var container = try decoder.unkeyedContainer()
            piece = try container.decode(String.self)
            score = try container.decode(Double.self)
        }
    }

    struct Normalizer: Decodable {
        var type: String?
        var precompiledCharsmap: String?
        var normalizers: [Normalizer]?

        private enum CodingKeys: String, CodingKey {
            case type, normalizers
            case precompiledCharsmap = "precompiled_charsmap"
        }
    }

    struct AddedToken: Decodable {
        var id: Int
        var content: String
        var singleWord: Bool?
        var lstrip: Bool?
        var rstrip: Bool?
        var normalized: Bool?
        var special: Bool?

        private enum CodingKeys: String, CodingKey {
            case id, content, lstrip, rstrip, normalized, special
            case singleWord = "single_word"
        }

        var spec: AddedTokenSpec {
            var spec = AddedTokenSpec(content: content, special: special ?? false, normalized: normalized)
            spec.lstrip = lstrip ?? false
            spec.rstrip = rstrip ?? false
            spec.singleWord = singleWord ?? false
            return spec
        }
    }

    var model: Model?
    var normalizer: Normalizer?
    var addedTokens: [AddedToken]?

    private enum CodingKeys: String, CodingKey {
        case model, normalizer
        case addedTokens = "added_tokens"
    }

    /// The folder's tokenizer.json; `invalidFile` with a one-line reason when it is not one.
    static func read(_ files: TokenizerFolder) throws(TokenizerError) -> TokenizerJSON {
        let data = try files.data("tokenizer.json")
        do {
            return try JSONDecoder().decode(TokenizerJSON.self, from: data)
        } catch let error as DecodingError {
            throw .invalidFile(path: files.path("tokenizer.json"), reason: describe(error))
        } catch {
            throw .invalidFile(path: files.path("tokenizer.json"), reason: "invalid JSON (\(error))")
        }
    }

    /// The charsmap of the first `Precompiled` step (`convert_to_native_format`), base64 as stored.
    var precompiledCharsmap: String? {
        guard let normalizer else { return nil }
        let steps = normalizer.type == "Sequence" ? normalizer.normalizers ?? [] : [normalizer]
        return steps.first { $0.type == "Precompiled" && $0.precompiledCharsmap != nil }?.precompiledCharsmap
    }

    /// `added_tokens` in id order, as transformers reads them when the config has no `added_tokens_decoder`.
    var addedTokenSpecs: [AddedTokenSpec] {
        (addedTokens ?? []).sorted { $0.id < $1.id }.map(\.spec)
    }

    private static func describe(_ error: DecodingError) -> String {
        let (context, what): (DecodingError.Context, String)
        switch error {
        case .dataCorrupted(let c): (context, what) = (c, "invalid JSON")
        case .keyNotFound(let key, let c): (context, what) = (c, "missing key \"\(key.stringValue)\"")
        case .typeMismatch(let type, let c): (context, what) = (c, "expected \(type)")
        case .valueNotFound(let type, let c): (context, what) = (c, "expected \(type), found null")
        @unknown default: return "invalid JSON"
        }
        let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        var detail = context.debugDescription
        if let underlying = context.underlyingError { detail += " (\(underlying.localizedDescription))" }
        let line = "\(what)\(path.isEmpty ? "" : " at \(path)"): \(detail)"
        return line.replacingOccurrences(of: "\n", with: " ")
    }
}
