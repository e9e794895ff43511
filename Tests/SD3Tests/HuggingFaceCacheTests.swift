import Foundation
import Testing
@testable import SD3

/// A hub cache laid out as huggingface_hub writes it: refs/main → snapshots/<hash>/… with symlinks into blobs/.
@Suite struct HuggingFaceCacheTests {
    /// Copies `folder`'s files into blobs/ (named by a running number standing in for the sha256) and
    /// links them from snapshots/<commit>/ under the same relative paths.
    static func makeRepo(_ root: String, id: String, from folder: String, commit: String) throws -> String {
        let repo = root + "/models--" + id.replacingOccurrences(of: "/", with: "--")
        let snapshot = repo + "/snapshots/" + commit
        let fm = FileManager.default
        try fm.createDirectory(atPath: repo + "/blobs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: repo + "/refs", withIntermediateDirectories: true)
        try (commit + "\n").write(toFile: repo + "/refs/main", atomically: true, encoding: .utf8)
        let files = fm.enumerator(atPath: folder)!.compactMap { $0 as? String }.filter { path in
            var isFolder: ObjCBool = false
            fm.fileExists(atPath: folder + "/" + path, isDirectory: &isFolder)
            return !isFolder.boolValue
        }
        for (index, file) in files.enumerated() {
            let blob = "blob\(index)"
            try fm.copyItem(atPath: folder + "/" + file, toPath: repo + "/blobs/" + blob)
            let link = snapshot + "/" + file
            try fm.createDirectory(atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let depth = file.split(separator: "/").count + 1
            try fm.createSymbolicLink(atPath: link, withDestinationPath: String(repeating: "../", count: depth) + "blobs/" + blob)
        }
        return snapshot
    }

    @Test func resolvesRepoIDs() throws {
        let root = NSTemporaryDirectory() + "hf-cache-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let snapshot = try Self.makeRepo(root, id: "tiny/sd3-diffusers", from: TransformerTests.fixtures + "/tiny-sd3", commit: "0123abcd")
        let single = NSTemporaryDirectory() + "hf-single-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: single, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: single) }
        try FileManager.default.copyItem(atPath: SingleFileTests.files + "/sd3-incl-clips.safetensors", toPath: single + "/sd3_medium_incl_clips.safetensors")
        let singleSnapshot = try Self.makeRepo(root, id: "tiny/sd3-single", from: single, commit: "feedbeef")

        let cache = HuggingFaceCache(roots: [root + "/missing", root])
        #expect(cache.snapshot(repo: "tiny/sd3-diffusers") == snapshot)
        #expect(cache.repos().map(\.id) == ["tiny/sd3-diffusers", "tiny/sd3-single"])
        let source = try ModelSource("tiny/sd3-diffusers", cache: cache)
        guard case let .diffusers(folder) = source.layout else { Issue.record("not a diffusers layout"); return }
        #expect(folder == snapshot)
        // The cached folder gives the same image as the folder it was made from.
        let image = try SingleFileTests.generate(source)
        #expect(image == (try SingleFileTests.generate(try ModelSource(TransformerTests.fixtures + "/tiny-sd3"))))
        // A repo holding one single file resolves to that file.
        #expect(try ModelSource("tiny/sd3-single", cache: cache).path == singleSnapshot + "/sd3_medium_incl_clips.safetensors")
        #expect(throws: ModelSourceError.notCached(repo: "tiny/absent", roots: cache.roots)) { try ModelSource("tiny/absent", cache: cache) }

        // Stability's repo layout: several checkpoints (the most complete is taken) and text_encoders/ beside them.
        let stability = NSTemporaryDirectory() + "hf-stability-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: stability + "/text_encoders", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: stability) }
        for (from, to) in [("sd3.safetensors", "sd3_medium.safetensors"), ("sd3-incl-clips.safetensors", "sd3_medium_incl_clips.safetensors"),
                           ("t5xxl_fp16.safetensors", "text_encoders/t5xxl_fp16.safetensors")] {
            try FileManager.default.copyItem(atPath: SingleFileTests.files + "/" + from, toPath: stability + "/" + to)
        }
        let stabilitySnapshot = try Self.makeRepo(root, id: "tiny/sd3-medium", from: stability, commit: "c0ffee")
        let reference = SingleFileTests.referenceFolder(sd35: false)
        let medium = try ModelSource("tiny/sd3-medium", extras: .init(config: reference), cache: cache)
        #expect(medium.path == stabilitySnapshot + "/sd3_medium_incl_clips.safetensors" && medium.has(.textEncoder3))
        let allInOne = try ModelSource(SingleFileTests.files + "/sd3-incl-clips-t5xxlfp16.safetensors", extras: .init(config: reference))
        #expect(try SingleFileTests.generate(medium) == (try SingleFileTests.generate(allInOne)))
        // Environment order: HF_HUB_CACHE, then HF_HOME/hub, then the user cache.
        let env = HuggingFaceCache(environment: ["HF_HUB_CACHE": "/a", "HF_HOME": "/b", "HOME": "/home/u"])
        #expect(env.roots == ["/a", "/b/hub", "/home/u/.cache/huggingface/hub"])
        #expect(HuggingFaceCache.isRepoID("stabilityai/stable-diffusion-3-medium-diffusers"))
        #expect(!HuggingFaceCache.isRepoID("/abs/path") && !HuggingFaceCache.isRepoID("a/b/c") && !HuggingFaceCache.isRepoID("../x"))
    }
}
