import ArgumentParser
import Foundation
import SafeTensors
import SD3

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a .safetensors file or a diffusers model folder (components, classes, tensors, dtypes, sizes).")

    @Argument(help: "A .safetensors file, a diffusers pipeline folder (model_index.json), one component folder, or a Hugging Face repo id in the local cache.")
    var path: String

    @Flag(help: "Also list every tensor of each weight file (name, dtype, shape).")
    var tensors = false

    func run() throws {
        let info = try ModelInspector.inspect(try ModelSource.resolve(path))
        switch info.kind {
        case .file:
            print("\(info.path): safetensors file")
            describeCheckpoint(info.path)
        case .component: print("\(info.path): model component folder")
        case let .pipeline(name, version): print("\(info.path): \(name)\(version.map { " (diffusers \($0))" } ?? "")")
        }
        for component in info.components { describe(component, indent: "  ") }
        if !info.absentComponents.isEmpty { print("  not included: \(info.absentComponents.joined(separator: ", "))") }
        if case .pipeline = info.kind {
            let total = info.components.compactMap(\.primaryWeights).reduce((0, 0)) { ($0.0 + $1.parameterCount, $0.1 + $1.bytes) }
            print("  total: \(Format.count(total.0)) parameters, \(Format.bytes(total.1))")
        }
    }

    /// What the header says the file is: an SD3 single-file checkpoint (which model, which parts) or another family.
    private func describeCheckpoint(_ path: String) {
        do {
            let checkpoint = try SingleFileCheckpoint(path: path)
            let parts = SD3Component.allCases.filter { checkpoint.parts[$0] != nil }.map(\.label).joined(separator: ", ")
            var kind = "SD3 single-file checkpoint"
            if checkpoint.parts[.transformer] != nil, let config = try? HeaderConfigs.transformer(try checkpoint.weights(.transformer)) {
                kind = "\(HeaderConfigs.familyName(config)) single-file checkpoint"
            }
            print("  \(kind): \(parts)")
        } catch {
            print("  \(error)")
        }
    }

    private func describe(_ c: ComponentInfo, indent: String) {
        var title = "\(indent)\(c.name)"
        if let declared = c.declaredClass { title += ": \(declared)" + (c.library.map { " (\($0))" } ?? "") }
        if let configClass = c.configClass, configClass != c.declaredClass {
            title += c.declaredClass == nil ? ": \(configClass)" : " [config says \(configClass)]"
        }
        print(title)
        for set in c.weights {
            let dtypes = set.dtypes.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) ×\($0.value)" }.joined(separator: ", ")
            let label = set.variant.map { "variant \($0): " } ?? ""
            print("\(indent)  \(label)\(set.tensorCount) tensors, \(Format.count(set.parameterCount)) parameters (\(set.parameterCount)), \(Format.bytes(set.bytes)); \(dtypes.isEmpty ? "no tensors" : dtypes)")
            if set.files.count > 1 { print("\(indent)  \(set.files.count) shards") }
            if tensors {
                for path in set.files {
                    guard let file = try? SafeTensorsFile(path: path) else { continue }
                    for t in file.tensors.sorted(by: { $0.name < $1.name }) {
                        print("\(indent)    \(t.name)  \(t.dtype.rawValue) \(t.shape)")
                    }
                }
            }
        }
        if c.weights.isEmpty && !c.otherFiles.isEmpty { print("\(indent)  files: \(c.otherFiles.joined(separator: ", "))") }
        for (key, value) in c.metadata.sorted(by: { $0.key < $1.key }) {
            let shown = value.count > 80 ? String(value.prefix(77)) + "..." : value
            print("\(indent)  metadata \(key) = \(shown)")
        }
    }
}
