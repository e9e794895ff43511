import Foundation
import Testing

/// The module graph as docs/architecture.md describes it, checked against Package.swift and every source file's
/// imports: a target imports only what it declares, nothing imports upward, and the studio's pure layer runs no
/// effects (no Hub, no process environment).
@Suite struct ArchitectureTests {
    /// Each target's declared dependencies (target names and product module names), from Package.swift's text.
    static func declaredDependencies() throws -> [String: Set<String>] {
        let text = try String(contentsOfFile: Support.packageRoot + "/Package.swift", encoding: .utf8)
        var result: [String: Set<String>] = [:]
        let pattern = try NSRegularExpression(pattern: #"\.(?:target|executableTarget|testTarget|systemLibrary)\(\s*name:\s*"([^"]+)""#)
        let matches = pattern.matches(in: text, range: NSRange(text.startIndex..., in: text))
        for (i, match) in matches.enumerated() {
            let name = String(text[Range(match.range(at: 1), in: text)!])
            let start = Range(match.range, in: text)!.upperBound
            let end = i + 1 < matches.count ? Range(matches[i + 1].range, in: text)!.lowerBound : text.endIndex
            let body = String(text[start..<end])
            guard let open = body.range(of: "dependencies: [") else { result[name] = []; continue }
            // The list up to its closing bracket (products are `.product(name: "M", package: "P")`).
            var depth = 1, index = open.upperBound
            while index < body.endIndex, depth > 0 {
                if body[index] == "[" { depth += 1 } else if body[index] == "]" { depth -= 1 }
                index = body.index(after: index)
            }
            let list = String(body[open.upperBound..<index])
            let quoted = try NSRegularExpression(pattern: #"(?:^|[\[,(\s])"([A-Za-z0-9_.]+)"|\.product\(name:\s*"([^"]+)""#)
            var names = Set<String>()
            for m in quoted.matches(in: list, range: NSRange(list.startIndex..., in: list)) {
                if let r = Range(m.range(at: 2), in: list) { names.insert(String(list[r]).replacingOccurrences(of: "swift-argument-parser", with: "ArgumentParser")) }
                else if let r = Range(m.range(at: 1), in: list), !list[..<r.lowerBound].hasSuffix("package: \"") { names.insert(String(list[r])) }
            }
            names.remove("GRDB.swift")
            names.remove("TOMLKit") ; if list.contains("\"TOMLKit\"") { names.insert("TOMLKit") }
            result[name] = names
        }
        return result
    }

    /// The modules a folder's Swift files import (system modules left out).
    static func imports(of folder: String) throws -> [String: Set<String>] {
        let system: Set<String> = ["Foundation", "FoundationNetworking", "Glibc", "Darwin", "Dispatch", "Testing", "XCTest", "Synchronization"]
        var result: [String: Set<String>] = [:]
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: folder) else { return [:] }
        for case let file as String in walker where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: folder + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let i = words.firstIndex(of: "import"), words[..<i].allSatisfy({ $0.hasPrefix("@") }), i + 1 < words.count else { continue }
                let module = String(words[i + 1])
                if !system.contains(module) { result[file, default: []].insert(module) }
            }
        }
        return result
    }

    @Test func everyImportIsADeclaredDependency() throws {
        let declared = try Self.declaredDependencies()
        #expect(declared["StudioCore"] != nil && declared["sd3"] != nil, "Package.swift was not read: \(declared.keys.sorted())")
        for (root, isTest) in [("Sources", false), ("Tests", true)] {
            for target in try FileManager.default.contentsOfDirectory(atPath: Support.packageRoot + "/" + root).sorted() {
                guard let allowed = declared[target] else { continue }
                for (file, modules) in try Self.imports(of: Support.packageRoot + "/\(root)/\(target)") {
                    let undeclared = modules.subtracting(allowed).subtracting(isTest ? [] : [])
                    #expect(undeclared.isEmpty, "\(root)/\(target)/\(file) imports \(undeclared.sorted()) without declaring it in Package.swift")
                }
            }
        }
    }

    /// The layers point down: the engine knows nothing of the studio or the command line, the studio's pure layer
    /// runs no effects.
    @Test func theLayersPointDown() throws {
        let declared = try Self.declaredDependencies()
        let studio: Set<String> = ["StudioCore", "StudioRuntime", "StudioTerminal", "sd3"]
        for engine in ["Tensors", "SafeTensors", "Tokenizers", "ImageIO", "SD3", "Hub", "ComfyUI", "Training", "Kernels", "RegularFiles",
                       "Checksums", "HubCacheNames"] {
            #expect(declared[engine].map { $0.isDisjoint(with: studio) } ?? false, "\(engine) depends on \(declared[engine]?.intersection(studio).sorted() ?? [])")
        }
        #expect(declared["StudioCore"].map { !$0.contains("Hub") && !$0.contains("StudioRuntime") && !$0.contains("CNcurses") } ?? false)
        #expect(declared["StudioRuntime"].map { !$0.contains("StudioTerminal") && !$0.contains("CNcurses") } ?? false)
        // The hub client hashes and names the cache's files; it needs no tensors (nor oneDNN under them).
        #expect(declared["Hub"] == ["Checksums", "HubCacheNames"], "Hub depends on \(declared["Hub"]?.sorted() ?? [])")
        // Only StudioTerminal touches ncurses and chafa.
        for (target, dependencies) in declared where target != "StudioTerminal" && target != "SystemLibrariesTests" {
            #expect(!dependencies.contains("CNcurses") && !dependencies.contains("CChafa"), "\(target) depends on ncurses or chafa")
        }
        // ImageMetadata sits under the engine: it reads and writes PNG text and knows nothing of what made the image.
        let metadataAllowed: Set<String> = ["ImageIO", "Inflate", "RegularFiles", "CZlib", "CPNG", "CJPEG"]
        #expect(declared["ImageMetadata"].map { $0.isSubset(of: metadataAllowed) } ?? false, "ImageMetadata depends on \(declared["ImageMetadata"] ?? [])")
        for (file, _) in try Self.imports(of: Support.packageRoot + "/Sources/StudioCore") {
            let text = try String(contentsOfFile: Support.packageRoot + "/Sources/StudioCore/" + file, encoding: .utf8)
            #expect(!text.contains("ProcessInfo") && !text.contains("getenv("), "StudioCore/\(file) reads the process environment")
        }
    }

    /// PNG metadata is parsed in one place, ImageMetadata: no other target walks text chunks, decodes our JSON record or
    /// names another tool's chunk.
    @Test func onlyImageMetadataParsesMetadata() throws {
        let parsing = ["PNGFile.readText", "textChunkList", "decode(ImageMetadata.self", "\"invokeai_metadata\"", "\"sd-metadata\"",
                       "\"fooocus_scheme\"", "\"sui_image_params\"", "Negative prompt:"]
        for target in try FileManager.default.contentsOfDirectory(atPath: Support.packageRoot + "/Sources").sorted()
        where target != "ImageMetadata" && target != "ImageIO" {
            let folder = Support.packageRoot + "/Sources/" + target
            for case let file as String in FileManager.default.enumerator(atPath: folder)?.allObjects ?? [] where file.hasSuffix(".swift") {
                let text = try String(contentsOfFile: Support.packageRoot + "/Sources/\(target)/" + file, encoding: .utf8)
                for needle in parsing { #expect(!text.contains(needle), "Sources/\(target)/\(file) parses metadata (\(needle))") }
            }
        }
    }

    /// docs/architecture.md's module graph is Package.swift's, generated: every target of Sources/ with what it
    /// declares (which `everyImportIsADeclaredDependency` holds the import lines to), the ones that others stand on
    /// lower. STUDIO_RECORD_DOCS=1 rewrites the block.
    @Test func theDocumentedModuleGraphIsPackageSwifts() throws {
        let declared = try Self.declaredDependencies()
        let folders = try FileManager.default.contentsOfDirectory(atPath: Support.packageRoot + "/Sources")
        let targets = declared.keys.filter(folders.contains)
        #expect(Set(targets) == Set(folders), "Sources/ folders without a target: \(Set(folders).subtracting(targets).sorted())")
        // A target's height: 0 for one on nothing of ours, else one more than the highest it stands on.
        var height: [String: Int] = [:]
        func measure(_ name: String, _ path: Set<String>) -> Int {
            if let known = height[name] { return known }
            let own = (declared[name] ?? []).filter { targets.contains($0) && !path.contains($0) }
            let h = own.map { measure($0, path.union([name])) + 1 }.max() ?? 0
            height[name] = h
            return h
        }
        let ordered = targets.sorted { (measure($0, []), $1) > (measure($1, []), $0) }
        let width = (ordered.map(\.count).max() ?? 0) + 1
        var lines: [String] = []
        for name in ordered {
            let ours = (declared[name] ?? []).filter(targets.contains).sorted { (height[$0] ?? 0, $1) > (height[$1] ?? 0, $0) }
            let theirs = (declared[name] ?? []).subtracting(targets).sorted()
            let all = ours + theirs.map { "(\($0))" }
            lines.append(name.padding(toLength: width, withPad: " ", startingAt: 0) + "→ " + (all.isEmpty ? "nothing of ours" : all.joined(separator: ", ")))
        }
        let begin = "<!-- module graph: generated from Package.swift by ArchitectureTests -->", end = "<!-- end of module graph -->"
        let block = ([begin, "```"] + lines + ["```", end]).joined(separator: "\n")
        let path = Support.packageRoot + "/docs/architecture.md"
        let doc = try String(contentsOfFile: path, encoding: .utf8)
        let start = try #require(doc.range(of: begin), "docs/architecture.md has no generated module graph")
        let stop = try #require(doc.range(of: end, range: start.upperBound..<doc.endIndex))
        if ProcessInfo.processInfo.environment["STUDIO_RECORD_DOCS"] == "1" {
            try doc.replacingCharacters(in: start.lowerBound..<stop.upperBound, with: block).write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        #expect(String(doc[start.lowerBound..<stop.upperBound]) == block, "docs/architecture.md's module graph is not Package.swift's; STUDIO_RECORD_DOCS=1 rewrites it:\n\(block)")
    }
}
