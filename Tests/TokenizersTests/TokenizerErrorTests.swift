import Foundation
import Testing
@testable import Tokenizers

@Suite struct TokenizerErrorTests {
    @Test func messagesNameTheFile() {
        #expect(TokenizerError.missingFile(path: "/m/tokenizer/vocab.json").description == "/m/tokenizer/vocab.json: missing tokenizer file")
        #expect(TokenizerError.wrongKind(path: "/m/tokenizer_3", expected: "CLIP", found: "T5Tokenizer").description.contains("expected a CLIP tokenizer"))
    }

    /// What a file holds is quoted on one line: a tokenizer_class with a newline (found by TokenizerFuzzTests at
    /// 1,000,000 mutations) is escaped.
    @Test func quotedFileContentStaysOnOneLine() {
        let config = Data(#"{"tokenizer_class": "T5Tok\nizer"}"#.utf8)
        let folder = Fixtures.folder(copying: "t5", replacing: ["tokenizer_config.json": config])
        let message = error { try CLIPTokenizer(folder: folder) }?.description ?? ""
        #expect(message == "\(folder.path): expected a CLIP tokenizer, found T5Tok\\nizer", "\(message)")
    }

    /// The TokenizerError `body` throws (nil when it returns; any other error fails the test).
    private func error<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> TokenizerError? {
        do {
            _ = try body()
            return nil
        } catch let error as TokenizerError {
            return error
        } catch {
            Issue.record("not a TokenizerError: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    @Test func wrongKindOfFolder() {
        let t5Folder = Fixtures.root.appendingPathComponent("t5")
        #expect(error { try CLIPTokenizer(folder: t5Folder) }
                == .wrongKind(path: t5Folder.path, expected: "CLIP", found: "T5Tokenizer"))
        let clipFolder = Fixtures.root.appendingPathComponent("clip")
        #expect(error { try T5Tokenizer(folder: clipFolder) }
                == .wrongKind(path: clipFolder.path, expected: "T5", found: "CLIPTokenizer"))
        // Without configs, the files give the kind away.
        let bareT5 = Fixtures.folder(copying: "t5", removing: ["tokenizer_config.json", "tokenizer.json"])
        #expect(error { try CLIPTokenizer(folder: bareT5) }
                == .wrongKind(path: bareT5.path, expected: "CLIP", found: "a SentencePiece folder (spiece.model)"))
        let bareClip = Fixtures.folder(copying: "clip", removing: ["tokenizer_config.json"])
        #expect(error { try T5Tokenizer(folder: bareClip) }
                == .wrongKind(path: bareClip.path, expected: "T5", found: "a BPE folder (vocab.json)"))
        let clipJSON = Fixtures.folder(copying: "t5", replacing: ["tokenizer.json": Data(#"{"model": {"type": "BPE"}}"#.utf8)],
                                       removing: ["tokenizer_config.json"])
        #expect(error { try T5Tokenizer(folder: clipJSON) }
                == .wrongKind(path: clipJSON.path, expected: "T5", found: "a BPE model in tokenizer.json"))
    }

    @Test func missingFiles() throws {
        let noMerges = Fixtures.folder(copying: "clip", removing: ["merges.txt"])
        #expect(error { try CLIPTokenizer(folder: noMerges) } == .missingFile(path: noMerges.appendingPathComponent("merges.txt").path))
        let noVocab = Fixtures.folder(copying: "clip", removing: ["vocab.json"])
        #expect(error { try CLIPTokenizer(folder: noVocab) } == .missingFile(path: noVocab.appendingPathComponent("vocab.json").path))
        let empty = Fixtures.scratchFolder("empty")
        #expect(error { try T5Tokenizer(folder: empty) } == .missingFile(path: empty.appendingPathComponent("spiece.model").path))
        let nowhere = URL(fileURLWithPath: "/nonexistent/tokenizer_2")
        #expect(error { try CLIPTokenizer(folder: nowhere) } == .missingFile(path: "/nonexistent/tokenizer_2/vocab.json"))
    }

    @Test func invalidFilesNameTheFileInOneLine() throws {
        func expectInvalid(_ error: TokenizerError?, file: URL, sourceLocation: SourceLocation = #_sourceLocation) {
            guard case .invalidFile(let path, let reason)? = error else {
                Issue.record("expected invalidFile for \(file.lastPathComponent), got \(String(describing: error))", sourceLocation: sourceLocation)
                return
            }
            #expect(path.hasPrefix(file.path), sourceLocation: sourceLocation)
            #expect(!reason.isEmpty && !error!.description.contains("\n"), sourceLocation: sourceLocation)
        }
        let brokenConfig = Fixtures.folder(copying: "clip", replacing: ["tokenizer_config.json": Data("{\"pad_token\": ".utf8)])
        expectInvalid(error { try CLIPTokenizer(folder: brokenConfig) }, file: brokenConfig.appendingPathComponent("tokenizer_config.json"))
        let brokenVocab = Fixtures.folder(copying: "clip", replacing: ["vocab.json": Data("[1, 2]".utf8)])
        expectInvalid(error { try CLIPTokenizer(folder: brokenVocab) }, file: brokenVocab.appendingPathComponent("vocab.json"))
        let brokenMerges = Fixtures.folder(copying: "clip", replacing: ["merges.txt": Data("#version: 0.2\nt h\nthree parts here\n".utf8)])
        expectInvalid(error { try CLIPTokenizer(folder: brokenMerges) }, file: brokenMerges.appendingPathComponent("merges.txt"))
        let unknownMerge = Fixtures.folder(copying: "clip", replacing: ["merges.txt": Data("#version: 0.2\nt h\nzz qq\n".utf8)])
        expectInvalid(error { try CLIPTokenizer(folder: unknownMerge) }, file: unknownMerge.appendingPathComponent("merges.txt"))
        let brokenJSON = Fixtures.folder(copying: "t5", replacing: ["tokenizer.json": Data("{\"model\": {".utf8)])
        expectInvalid(error { try T5Tokenizer(folder: brokenJSON) }, file: brokenJSON.appendingPathComponent("tokenizer.json"))
        let badCharsmap = Fixtures.folder(copying: "t5", replacing: [
            "tokenizer.json": Data(#"{"normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA!"}, "model": {"type": "Unigram", "vocab": [["a", 0.0]]}}"#.utf8),
        ])
        expectInvalid(error { try T5Tokenizer(folder: badCharsmap) }, file: badCharsmap.appendingPathComponent("tokenizer.json"))
        let model = Fixtures.data("t5/spiece.model")
        for broken in [Data("not a protobuf at all".utf8), model.prefix(model.count / 2), Data()] {
            let folder = Fixtures.folder(copying: "t5", replacing: ["spiece.model": broken], removing: ["tokenizer.json"])
            expectInvalid(error { try T5Tokenizer(folder: folder) }, file: folder.appendingPathComponent("spiece.model"))
        }
    }
}
