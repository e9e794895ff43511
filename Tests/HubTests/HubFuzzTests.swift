import Foundation
import FuzzSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import Hub

/// Seeded mutations of what a hub sends (model info JSON, file names, redirect targets): no crash, no slow case, and
/// whatever is accepted holds up against checks written independently of the parser.
@Suite struct HubFuzzTests {
    /// Model info as the hub answers it: the fake hub's listings of both test repos, and one with the extra fields the
    /// real hub adds (card data, spaces, safetensors totals) around the ones a pull reads.
    static func corpus() throws -> [[UInt8]] {
        let real = #"""
        {"_id": "6662a1", "id": "stabilityai/stable-diffusion-3-medium-diffusers", "private": false, "gated": "auto", "downloads": 12,
         "tags": ["diffusers", "safetensors"], "sha": "ea42f8cef0f178587cf766dc8129abd379c90671",
         "cardData": {"license": "other", "extra_gated_fields": {"Name": "text", "I agree": "checkbox"}},
         "siblings": [
          {"rfilename": ".gitattributes", "size": 1519, "blobId": "a6344aac8c09253b3b630fb776ae94478aa0275b"},
          {"rfilename": "model_index.json", "size": 706, "blobId": "0b0b6b2c4b1e1a3b0b2bd7c1e6a5a1f0c3d2e1f0"},
          {"rfilename": "text_encoder_3/model-00001-of-00002.safetensors", "size": 4994582104, "blobId": "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
           "lfs": {"sha256": "f5ad2c6e5c5b0a1e3f0e4ec9b9c2a3c0c6e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8", "size": 4994582104, "pointerSize": 135}},
          {"rfilename": "tokenizer/vocab.json", "size": 1059962, "blobId": "469be27c5c010538f845f518c4f5e8574c78f7c8"},
          {"rfilename": "tokenizer_2/vocab.json", "size": 1059962, "blobId": "469be27c5c010538f845f518c4f5e8574c78f7c8"}],
         "spaces": [], "safetensors": {"total": 2028328448}, "usedStorage": 45276474393}
        """#
        func hex(_ value: Int, _ count: Int) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: count - digits.count) + digits
        }
        let tiny = try StudioPullTests.files()
        let listings = [PullTests.files(), tiny].map { files in
            FakeHub.info(siblings: files.enumerated().map { index, file in
                var sibling: [String: Any] = ["rfilename": file.path, "size": file.data.count, "blobId": hex(index, 40)]
                if file.lfs { sibling["lfs"] = ["sha256": hex(index, 64), "size": file.data.count, "pointerSize": 134] }
                return sibling
            })
        }
        return ([Data(real.utf8)] + listings).map { [UInt8]($0) }
    }

    /// A path that stays under the folder it is joined to, with no control character: checked by Foundation's own
    /// path standardizing, not by HubNames.
    /// Compared as bytes: String's `hasPrefix` and `split` see "/" plus a combining mark as another character.
    static func staysInside(_ path: String) -> Bool {
        let base = "/fuzz/snapshot"
        let joined = URL(fileURLWithPath: base).appendingPathComponent(path).standardizedFileURL.path
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        return joined.utf8.starts(with: (base + "/").utf8) && joined.utf8.count > base.utf8.count + 1
            && !path.unicodeScalars.contains { $0 == "\\" || $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
            && !Array(path.utf8).split(separator: slash, omittingEmptySubsequences: false).contains { $0.isEmpty || Array($0) == [dot] || Array($0) == [dot, dot] }
    }

    /// The slowest case, timed again three times: a parser that is slow on that input is slow every time, while a
    /// machine busy with other work (a million cases meet a few preemptions) is not.
    static func expectFast(_ slowest: Fuzz.Slowest, under limit: Double, _ check: ([UInt8]) -> Void,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        let again = (0..<3).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            check(slowest.input)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }.min() ?? 0
        #expect(again < limit, "slowest case \(again) s (first \(slowest.seconds) s) on \(slowest.input.count) bytes: \(slowest.input.prefix(64))",
                sourceLocation: sourceLocation)
    }

    static func isLowerHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    @Test func modelInfo() throws {
        var accepted = 0, files = 0
        func check(_ bytes: [UInt8]) {
            guard let info = try? RepoInfo(repo: "org/name", json: Data(bytes)) else { return }
            accepted += 1
            #expect(Self.isLowerHex(info.commit, count: 40), "commit \(info.commit.debugDescription)")
            #expect(Set(info.files.map(\.path)).count == info.files.count, "a path listed twice")
            for file in info.files {
                files += 1
                #expect(Self.staysInside(file.path), "accepted \(file.path.debugDescription)")
                #expect(Self.isLowerHex(file.blobName, count: file.sha256 == nil ? 40 : 64), "blob \(file.blobName.debugDescription)")
                #expect((0...(Int64(1) << 40)).contains(file.size), "size \(file.size)")
            }
        }
        let slowest = Fuzz.run(corpus: try Self.corpus(), seed: 0x4855_4201, check)
        #expect(accepted > 0 && files > 0, "no mutation was accepted: the corpus is not reaching the checks")
        Self.expectFast(slowest, under: 0.5, check)
    }

    /// Names mutated byte by byte (invalid UTF-8 becomes U+FFFD, as when the JSON decoder meets it).
    @Test func fileNamesAndRevisions() {
        let names = ["model_index.json", "transformer/diffusion_pytorch_model.safetensors", "text_encoder_3/model-00001-of-00002.safetensors",
                     "refs/pr/12", "v1.0", "main", "a/../b", "..\u{0}", FakeHub.commit]
        var safe = 0
        func check(_ bytes: [UInt8]) {
            let name = String(decoding: bytes, as: UTF8.self)
            if HubNames.isSafeFile(name) {
                safe += 1
                #expect(Self.staysInside(name), "accepted file name \(name.debugDescription)")
            }
            if HubNames.isRevision(name) {
                #expect(Self.staysInside(name) && name.unicodeScalars.allSatisfy(\.isASCII), "accepted revision \(name.debugDescription)")
            }
            if HubNames.isRepoID(name) { #expect(Self.staysInside(name) && name.split(separator: "/").count == 2, "accepted repo \(name.debugDescription)") }
            #expect(!HubNames.shown(name).unicodeScalars.contains { $0.value < 0x20 }, "a control character shown")
        }
        let slowest = Fuzz.run(corpus: names.map { Array($0.utf8) }, seed: 0x4855_4202, check)
        #expect(safe > 0)
        Self.expectFast(slowest, under: 0.1, check)
    }

    /// Redirect targets: the token is kept only when scheme, host and port are the endpoint's, as URLComponents reads them.
    @Test func redirectTargets() throws {
        let endpoint = try #require(Origin(URL(string: "https://huggingface.co")!))
        let policy = RedirectPolicy(endpoint: endpoint, authorization: "Bearer hf_x")
        let targets = ["https://huggingface.co/api/models/a/b", "https://huggingface.co:443/x", "http://huggingface.co/x",
                       "https://cdn-lfs.huggingface.co/repos/x?X-Amz=1", "https://localhost:8080/x", "file:///etc/passwd", "//huggingface.co/x"]
        var kept = 0
        func check(_ bytes: [UInt8]) {
            guard let url = URL(string: String(decoding: bytes, as: UTF8.self)) else { return }
            guard case .follow(let request, let keeps) = policy.decide(URLRequest(url: url), hadToken: true, range: nil) else { return }
            #expect((request.value(forHTTPHeaderField: "Authorization") != nil) == keeps)
            guard keeps else { return }
            kept += 1
            let parts = URLComponents(url: url, resolvingAgainstBaseURL: false)
            #expect(parts?.scheme?.lowercased() == "https" && parts?.host?.lowercased() == "huggingface.co" && [nil, 443].contains(parts?.port),
                    "the token kept for \(url.absoluteString.debugDescription)")
        }
        let slowest = Fuzz.run(corpus: targets.map { Array($0.utf8) }, seed: 0x4855_4203, check)
        #expect(kept > 0)
        Self.expectFast(slowest, under: 0.1, check)
    }
}
