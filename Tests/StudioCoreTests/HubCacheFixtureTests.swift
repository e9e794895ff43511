import Foundation
import ImageIO
import SD3
@testable import StudioCore
import Testing

/// A cache written by huggingface_hub 2.4.0's own `snapshot_download` (Fixtures/hf-cache, made by
/// scripts/fixtures/hf_cache.py from the tiny fixture model) is read by `--model REPO_ID`: the repo id resolves to its
/// snapshot, every file is huggingface_hub's link to the bytes that were served, and the model draws the same image as
/// the folder it was served from, in-process and through `sd3 generate`.
@Suite struct HubCacheFixtureTests {
    static let cache = Support.packageRoot + "/Tests/StudioCoreTests/Fixtures/hf-cache"
    // Read once, never written.
    nonisolated(unsafe) static let record = try! JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: Support.packageRoot + "/Tests/StudioCoreTests/Fixtures/hf-cache.json"))) as! [String: Any]
    static let repo = record["repo"] as! String
    static let commit = record["commit"] as! String

    @Test func theCacheIsHuggingFaceHubsLinksToTheServedBytes() throws {
        #expect(Self.record["huggingface_hub"] as? String == "2.4.0" && Self.record["script"] as? String == "scripts/fixtures/hf_cache.py")
        let snapshot = try #require(HuggingFaceCache(roots: [Self.cache]).snapshot(repo: Self.repo), "no snapshot for \(Self.repo) in \(Self.cache)")
        #expect(snapshot == Self.cache + "/models--test-org--tiny-sd3/snapshots/" + Self.commit)
        let source = Support.packageRoot + "/" + (Self.record["source"] as! String)
        let files = Self.record["files"] as! [String: [String: Any]]
        #expect(files.count == 23 && files["transformer/diffusion_pytorch_model.fp16.safetensors"] == nil)
        for (path, file) in files {
            let link = snapshot + "/" + path
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: link)
            let depth = path.split(separator: "/").count + 1
            #expect(target == String(repeating: "../", count: depth) + "blobs/" + (file["blob"] as! String), "\(path) -> \(target)")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: link))
            let served = try Data(contentsOf: URL(fileURLWithPath: source + "/" + path))
            #expect(bytes.count == file["size"] as? Int && bytes == served, "\(path): not the bytes served")
        }
        // The catalog (F8, `sd3 models list`) lists it as a cached diffusers model.
        let entries = ModelCatalog.scan(configured: [], folders: [], cache: HuggingFaceCache(roots: [Self.cache]))
        #expect(entries.map(\.model) == [Self.repo] && entries.first?.layout == "Hugging Face cache (diffusers)" && entries.first?.problem == nil)
    }

    static func parameters() -> GenerationParameters {
        var p = GenerationParameters(prompt: "a red circle at the top left on a blue background")
        (p.width, p.height, p.steps, p.seed, p.maxSequenceLength) = (32, 32, 3, 7, 32)
        return p
    }

    @Test func theRepoIDLoadsAndDrawsAsItsFolder() throws {
        var options = LoadOptions()
        (options.threads, options.cache) = (1, HuggingFaceCache(roots: [Self.cache]))
        let cached = try StableDiffusion3Pipeline(path: Self.repo, options: options)
        guard case let .diffusers(folder) = cached.source.layout else { Issue.record("not read as a diffusers folder"); return }
        #expect(folder.hasSuffix("/snapshots/" + Self.commit))
        let plain = try StableDiffusion3Pipeline(path: Support.tinyModel, options: options)
        let (a, b) = (try cached.generate(Self.parameters()), try plain.generate(Self.parameters()))
        #expect(a == b, "max difference \(ExploreSessionTests.maxDifference(a, b))")
    }

    @Test(.timeLimit(.minutes(10)))
    func sd3GenerateTakesTheRepoID() throws {
        let folder = Support.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let environment = ["HF_HUB_CACHE": Self.cache, "XDG_CONFIG_HOME": folder + "/config", "XDG_DATA_HOME": folder + "/data"]
        func generate(_ model: String, _ output: String) throws -> (image: RGBImage, text: [(key: String, value: String)]) {
            let result = run(TmuxStudio.sd3, ["generate", "--model", model, "-p", "a red circle", "-W", "32", "-H", "32", "--steps", "3",
                                              "--seed", "7", "--threads", "1", "-o", folder + "/" + output], environment: environment)
            try #require(result.status == 0, "\(result.output)")
            return try PNGFile.read(folder + "/" + output)
        }
        let cached = try generate(Self.repo, "cached.png"), plain = try generate(Support.tinyModel, "plain.png")
        #expect(cached.image == plain.image)
        #expect(cached.text.first { $0.key == "parameters" }?.value.contains("Model: tiny-sd3") == true)
        let missing = run(TmuxStudio.sd3, ["generate", "--model", "test-org/absent", "-p", "x"], environment: environment)
        #expect(missing.status != 0 && missing.output.contains("test-org/absent") && missing.output.contains(Self.cache), "\(missing.output)")
    }
}
