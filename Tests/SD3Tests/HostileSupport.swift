import Foundation
import SafeTensors
import Tensors
import Testing
@testable import SD3

/// Corrupt copies of the tiny fixtures for the hostile-input suites: each case edits a copy in a temporary folder.
enum Hostile {
    static let tiny = TransformerTests.fixtures + "/tiny-sd3"
    static let loras = TransformerTests.fixtures + "/lora"

    static func temporaryFolder() -> String {
        let path = NSTemporaryDirectory() + "sd3-hostile-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A fresh copy of the tiny diffusers model.
    static func tinyCopy() throws -> String {
        let folder = temporaryFolder() + "/tiny"
        try FileManager.default.copyItem(atPath: tiny, toPath: folder)
        return folder
    }

    /// Sets (or, with nil, removes) one top-level key of a JSON file.
    static func setJSON(_ path: String, _ key: String, _ value: Any?) throws {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
        object[key] = value
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    /// Writes a config file's text with `key` set to a literal JSON value (numbers JSONSerialization cannot write: 1e39).
    static func setLiteral(_ path: String, _ key: String, _ literal: String) throws {
        try setJSON(path, key, "@@literal@@")
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\"@@literal@@\"", with: literal)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Rewrites a safetensors file through `edit` (return nil to drop a tensor), every tensor as F32.
    static func rewrite(_ source: String, to target: String, metadata: [String: String]? = nil,
                        _ edit: (String, Tensor) -> (String, Tensor)?) throws {
        let file = try SafeTensorsFile(path: source)
        var entries: [SafeTensorsWriter.Entry] = []
        for info in file.tensors {
            guard let (name, tensor) = edit(info.name, try file.tensor(info)) else { continue }
            entries.append(.init(name, tensor))
        }
        try SafeTensorsWriter(entries: entries, metadata: metadata ?? file.metadata).write(to: target)
    }

    /// Overwrites the stored bytes of tensor `name` with `byte` (0xFF makes every F32 a NaN).
    static func corrupt(_ path: String, tensor name: String, byte: UInt8) throws {
        let file = try SafeTensorsFile(path: path)
        let info = try #require(file.info(name))
        let headerLength = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8)!
            .reversed().reduce(0) { $0 << 8 | Int($1) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(8 + headerLength + info.begin))
        try handle.write(contentsOf: Data(repeating: byte, count: info.byteCount))
        try handle.close()
    }

    static func mkfifo(_ path: String) {
        _ = Foundation.mkfifo(path, 0o600)
    }

    /// The tiny model opened with every model loaded (so each config and weight is built).
    static func open(_ folder: String) throws -> StableDiffusion3Pipeline {
        var options = LoadOptions()
        options.threads = 2
        return try StableDiffusion3Pipeline(path: folder, options: options)
    }

    static func parameters() -> GenerationParameters {
        var p = GenerationParameters(prompt: "a red fox")
        (p.width, p.height, p.steps, p.seed, p.guidanceScale) = (32, 32, 2, 7, 4)
        return p
    }

    /// Runs `body`, which must throw; the message must contain every fragment. Returns the message.
    @discardableResult
    static func expectError(_ label: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () throws -> Void) -> String {
        do {
            try body()
            Issue.record("\(label): no error", sourceLocation: sourceLocation)
            return ""
        } catch {
            let message = "\(error)"
            for fragment in fragments where !message.contains(fragment) {
                Issue.record("\(label): the error \"\(message)\" does not say \"\(fragment)\"", sourceLocation: sourceLocation)
            }
            #expect(!message.contains("\n"), "\(label): more than one line: \(message)", sourceLocation: sourceLocation)
            return message
        }
    }
}
