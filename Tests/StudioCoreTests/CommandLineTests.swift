import Foundation
import ImageIO
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

/// `sd3 favorites`, `sd3 history` and `sd3 recall` as separate processes (the sd3 binary built beside this test
/// bundle), each on its own XDG_DATA_HOME.
@Suite struct CommandLineTests {
    static var sd3: String { TmuxStudio.sd3 }

    func sd3(_ arguments: [String], data: String) -> (status: Int32, output: String) {
        run(Self.sd3, arguments, environment: ["XDG_DATA_HOME": data])
    }

    /// A favorites export of `count` images whose files are /PREFIX/N.png.
    static func exportFile(_ prefix: String, count: Int, folder: String) throws -> String {
        let entries = (0..<count).map { i -> [String: Any] in
            let parameters = try! JSONSerialization.jsonObject(with: Data(Support.metadata(seed: UInt64(i), prompt: "\(prefix) \(i)").json.utf8))
            return ["file": "/\(prefix)/\(i).png", "date": "2026-01-02T03:04:05Z", "note": "note \(i)", "parameters": parameters]
        }
        let path = folder + "/\(prefix).json"
        try JSONSerialization.data(withJSONObject: entries).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Two processes importing at once (one write transaction per image, interleaving): every row lands.
    @Test(.timeLimit(.minutes(10))) func twoProcessesWritingAtOnceLoseNothing() throws {
        let data = Support.temporaryFolder()
        let count = 200
        let files = try ["a", "b"].map { try Self.exportFile($0, count: count, folder: data) }
        final class Results: @unchecked Sendable { var value: [(status: Int32, output: String)] = [(0, ""), (0, "")] }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            results.value[i] = run(Self.sd3, ["favorites", "import", files[i], "--json"], environment: ["XDG_DATA_HOME": data])
        }
        for result in results.value {
            #expect(result.status == 0 && result.output.contains("{\"added\":\(count),\"updated\":0}"), "\(result.output)")
        }
        let list = sd3(["history", "list", "--json"], data: data)
        let rows = try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]] ?? []
        #expect(rows.count == 2 * count, "\(list.output.prefix(300))")
        #expect(Set(rows.compactMap { $0["file"] as? String }).count == 2 * count)
        #expect(rows.allSatisfy { $0["favorite"] as? Bool == true })
        // Importing the same file again finds every image already there.
        let again = sd3(["favorites", "import", files[0]], data: data)
        #expect(again.status == 0 && again.output.contains("0 added, \(count) already there"), "\(again.output)")
    }

    /// `sd3 generate` adds its image to the history with every parameter (and `--no-history` does not).
    /// The version line names each library once ("OpenBLAS 0.3.21 …", not "OpenBLAS OpenBLAS 0.3.21").
    @Test func versionNamesTheInstructionSetsAndEachLibraryOnce() {
        let (status, output) = sd3(["--version"], data: Support.temporaryFolder())
        #expect(status == 0)
        #expect(output.hasPrefix("sd3 ") && output.contains("kernels ") && output.contains("oneDNN ") && output.contains("; OpenBLAS "), "\(output)")
        #expect(!output.contains("OpenBLAS OpenBLAS"), "\(output)")
    }

    @Test func generateAddsAHistoryRow() throws {
        let data = Support.temporaryFolder(), out = Support.temporaryFolder()
        let made = sd3(["generate", "--model", Support.tinyModel, "-p", "a blue square", "-W", "16", "-H", "16", "--steps", "2",
                        "--seed", "7", "--threads", "1", "-o", out + "/a.png"], data: data)
        #expect(made.status == 0, "\(made.output)")
        let list = sd3(["history", "list", "--json"], data: data)
        let rows = try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]] ?? []
        #expect(rows.count == 1 && rows.first?["file"] as? String == out + "/a.png", "\(list.output)")
        let metadata = try JSONDecoder().decode(ImageMetadata.self, from: try JSONSerialization.data(withJSONObject: try #require(rows.first?["parameters"])))
        #expect(metadata == (try PNGFile.read(out + "/a.png").text.first { $0.key == "sd3-studio" }.map {
            try JSONDecoder().decode(ImageMetadata.self, from: Data($0.value.utf8))
        }))
        #expect(metadata.prompt == "a blue square" && metadata.seed == 7 && metadata.steps == 2)
        let quiet = sd3(["generate", "--model", Support.tinyModel, "-p", "x", "-W", "16", "-H", "16", "--steps", "1", "--threads", "1",
                         "--no-history", "-o", out + "/b.png"], data: data)
        #expect(quiet.status == 0, "\(quiet.output)")
        let after = try JSONSerialization.jsonObject(with: Data(sd3(["history", "list", "--json"], data: data).output.utf8)) as? [[String: Any]]
        #expect(after?.count == 1)
    }

    @Test func favoritesExportImportShowAndHistory() throws {
        let data = Support.temporaryFolder()
        let source = try Self.exportFile("x", count: 3, folder: data)
        #expect(sd3(["favorites", "import", source], data: data).status == 0)
        let history = sd3(["history", "list", "--limit", "2"], data: data)
        #expect(history.status == 0 && history.output.contains("x 2") && history.output.contains("x 1") && !history.output.contains("x 0"), "\(history.output)")
        let show = sd3(["favorites", "show", "2"], data: data)
        #expect(show.status == 0 && show.output.contains("Image #2 ★") && show.output.contains("Note: note 1") && show.output.contains("Prompt: x 1"), "\(show.output)")
        let json = sd3(["favorites", "show", "2", "--json"], data: data)
        let entry = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(entry?["note"] as? String == "note 1" && (entry?["parameters"] as? [String: Any])?["seed"] as? Int == 1)

        let exported = data + "/out.json"
        #expect(sd3(["favorites", "export", exported], data: data).status == 0)
        let other = Support.temporaryFolder()
        let imported = sd3(["favorites", "import", exported], data: other)
        #expect(imported.status == 0 && imported.output.contains("3 added"), "\(imported.output)")
        let a = sd3(["favorites", "list", "--json"], data: data).output, b = sd3(["favorites", "list", "--json"], data: other).output
        #expect(!a.isEmpty && a == b, "an export imported into an empty database lists the same:\n\(a)\n---\n\(b)")
        let again = sd3(["favorites", "export", exported], data: data)
        #expect(again.status == 1 && again.output.contains("\(exported): already exists (not overwritten)"), "\(again.output)")
    }

    /// Bad input: one line naming the problem, exit status 1, no crash.
    @Test func badInputIsOneLineAndStatusOne() throws {
        let data = Support.temporaryFolder()
        let garbage = data + "/garbage.json"
        try "[{\"file\": 3}]".write(toFile: garbage, atomically: true, encoding: .utf8)
        let fixtures = RecallFixtures.folder
        let cases: [([String], String)] = [
            (["favorites", "show", "42"], "no image #42 in \(data)/sd3-studio/studio.sqlite"),
            (["favorites", "import", data + "/missing.json"], "\(data)/missing.json: no such file"),
            (["favorites", "import", garbage], "\(garbage): not a favorites export"),
            (["recall", data + "/missing.png"], "\(data)/missing.png: no such file"),
            (["recall", fixtures + "/not-a-png.png"], "\(fixtures)/not-a-png.png: not a PNG file"),
            (["recall", fixtures + "/plain.png"], "\(fixtures)/plain.png: no generation parameters I can read (chunks: none)"),
        ]
        for (arguments, message) in cases {
            let result = sd3(arguments, data: data)
            let lines = result.output.split(separator: "\n")
            #expect(result.status == 1 && lines.count == 1 && result.output.contains(message), "\(arguments): \(result.status) \(result.output)")
        }
    }

    @Test func corruptDatabaseIsReportedByTheCommandLine() throws {
        let data = Support.temporaryFolder()
        try FileManager.default.createDirectory(atPath: data + "/sd3-studio", withIntermediateDirectories: true)
        try Data(repeating: 0xAB, count: 5000).write(to: URL(fileURLWithPath: data + "/sd3-studio/studio.sqlite"))
        let result = sd3(["history", "list"], data: data)
        #expect(result.status == 0 && result.output.contains("was unreadable") && result.output.contains("moved aside to"), "\(result.output)")
        let names = try FileManager.default.contentsOfDirectory(atPath: data + "/sd3-studio")
        #expect(names.contains { $0.hasPrefix("studio.sqlite.corrupt-") }, "\(names)")
    }

    @Test(arguments: RecallFixtures.formats)
    func recallPrintsEachFormat(_ name: String) throws {
        let want = try #require(RecallFixtures.expected[name])
        let text = sd3(["recall", RecallFixtures.folder + "/" + name], data: Support.temporaryFolder())
        #expect(text.status == 0 && text.output.hasPrefix("Source: \(want["source"] as? String ?? "")\nPrompt: \(want["prompt"] as? String ?? "")"), "\(text.output)")
        let json = sd3(["recall", RecallFixtures.folder + "/" + name, "--json"], data: Support.temporaryFolder())
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(object?["seed"] as? NSNumber == want["seed"] as? NSNumber && object?["prompt"] as? String == want["prompt"] as? String)
    }

    @Test func recallRoundTripsOurPNG() throws {
        let folder = OutputFolder(path: Support.temporaryFolder())
        var metadata = Support.metadata(seed: 4_000_000_000, prompt: "a red circle, 水彩")
        metadata.negativePrompt = "blur"
        let (_, path) = try folder.save(Support.image, metadata: metadata)
        let result = sd3(["recall", path, "--json"], data: Support.temporaryFolder())
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        let embedded = try JSONSerialization.data(withJSONObject: try #require(object?["metadata"]))
        #expect(try JSONDecoder().decode(ImageMetadata.self, from: embedded) == metadata)
        let text = sd3(["recall", path], data: Support.temporaryFolder())
        #expect(text.output.contains("Source: sd3-studio\nPrompt: a red circle, 水彩\nNegative prompt: blur\nSteps: 3\n"), "\(text.output)")
    }
}
