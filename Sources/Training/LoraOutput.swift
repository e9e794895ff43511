import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SafeTensors
import SD3
import Tensors

/// The LoRA being trained: for each targeted Linear of the transformer, A [r, in] and B [out, r] in fp32 (the script
/// keeps trainable parameters fp32 even with a bf16 base). Scale alpha / r as peft applies it.
public struct TrainableLora: Sendable, Equatable {
    public struct Module: Sendable, Equatable {
        /// The diffusers module name, e.g. `transformer_blocks.0.attn.to_q`.
        public let name: String
        public let inFeatures: Int
        public let outFeatures: Int
        public var down: [Float]  // lora_A.weight [r, in]
        public var up: [Float]    // lora_B.weight [out, r]
    }

    /// The script's default `target_modules` (no `--lora_layers`).
    public static let defaultTargets = ["attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj", "attn.to_add_out",
                                        "attn.to_k", "attn.to_out.0", "attn.to_q", "attn.to_v"]

    public let rank: Int
    /// The script passes `lora_alpha=args.rank`; `sd3 train-lora --alpha` may differ.
    public let alpha: Double
    /// As given (`--lora-layers` split at commas and trimmed, like the script), for the metadata.
    public let targets: [String]
    public var modules: [Module]

    /// peft's target match (`check_target_module_exists` for a list): the whole name, or a suffix after a dot.
    public static func matches(_ name: String, targets: [String]) -> Bool {
        targets.contains { name == $0 || name.hasSuffix("." + $0) }
    }

    /// The trainable modules among `linears` (name, in, out) in the transformer's module order, initialised as
    /// `transformer.add_adapter(LoraConfig(init_lora_weights="gaussian"))` does on torch's global generator: per
    /// module, nn.Linear(in, r) and nn.Linear(r, out) are built (kaiming_uniform_: one uniform draw per weight,
    /// values then overwritten), then A ← normal_(0, 1/r) and B ← 0.
    public init(rank: Int, alpha: Double, targets: [String], linears: [(name: String, inFeatures: Int, outFeatures: Int)],
                generator: inout TorchCPUGenerator) throws {
        guard rank > 0 else { throw TrainingError.invalid("rank must be positive, not \(rank)") }
        guard alpha.isFinite, alpha > 0 else { throw TrainingError.invalid("alpha must be a positive number, not \(alpha)") }
        let chosen = linears.filter { Self.matches($0.name, targets: targets) }
        guard !chosen.isEmpty else {
            throw TrainingError.invalid("no transformer module matches the LoRA layers \(targets.joined(separator: ","))")
        }
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        modules = chosen.map { linear in
            _ = generator.rand(rank * linear.inFeatures + linear.outFeatures * rank)
            return Module(name: linear.name, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
                          down: generator.normal(mean: 0, std: 1 / Double(rank), count: rank * linear.inFeatures),
                          up: [Float](repeating: 0, count: linear.outFeatures * rank))
        }
    }

    public init(rank: Int, alpha: Double, targets: [String], modules: [Module]) {
        (self.rank, self.alpha, self.targets, self.modules) = (rank, alpha, targets, modules)
    }

    public var scale: Float { Float(alpha / Double(rank)) }

    /// The optimizer's view: A₀, B₀, A₁, B₁, …
    public var parameters: [[Float]] {
        get { modules.flatMap { [$0.down, $0.up] } }
        set {
            precondition(newValue.count == 2 * modules.count)
            for m in modules.indices { (modules[m].down, modules[m].up) = (newValue[2 * m], newValue[2 * m + 1]) }
        }
    }

    public var parameterCounts: [Int] { modules.flatMap { [rank * $0.inFeatures, $0.outFeatures * rank] } }

    /// The module's peft LoraConfig fields that diffusers reads back (`_create_lora_config` passes them to
    /// LoraConfig), as `save_lora_weights(transformer_lora_adapter_metadata=...)` stores them: prefixed with
    /// `transformer.`, `json.dumps(indent=2, sort_keys=True)`.
    public var adapterMetadataJSON: String {
        var fields: [(String, String)] = [
            ("alpha_pattern", "{}"), ("bias", "\"none\""), ("fan_in_fan_out", "false"), ("init_lora_weights", "\"gaussian\""),
            ("lora_alpha", Self.number(alpha)), ("lora_dropout", "0.0"), ("peft_type", "\"LORA\""), ("r", String(rank)),
            ("rank_pattern", "{}"), ("use_dora", "false"), ("use_rslora", "false"),
        ]
        let list = targets.map { "    " + JSONText.quoted($0) }.joined(separator: ",\n")
        fields.append(("target_modules", targets.isEmpty ? "[]" : "[\n\(list)\n  ]"))
        let lines = fields.map { ("transformer." + $0.0, $0.1) }.sorted { $0.0 < $1.0 }.map { "  \(JSONText.quoted($0.0)): \($0.1)" }
        return "{\n" + lines.joined(separator: ",\n") + "\n}"
    }

    /// Python's repr of the number json.dumps writes: an int stays an int, a float keeps its ".0".
    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return "\(value)"
    }

    /// `StableDiffusion3Pipeline.save_lora_weights` output: `transformer.<module>.lora_A.weight` / `lora_B.weight`,
    /// with `format: pt` and `lora_adapter_metadata`; fp32, or bf16 (round to nearest even) to halve the file.
    public func write(to path: String, dtype: DType = .f32) throws {
        guard dtype == .f32 || dtype == .bf16 else { throw TrainingError.invalid("a LoRA is written as F32 or BF16, not \(dtype.rawValue)") }
        var entries: [SafeTensorsWriter.Entry] = []
        for m in modules {
            entries.append(.init("transformer.\(m.name).lora_A.weight", Tensor(shape: [rank, m.inFeatures], data: m.down), as: dtype))
            entries.append(.init("transformer.\(m.name).lora_B.weight", Tensor(shape: [m.outFeatures, rank], data: m.up), as: dtype))
        }
        let writer = SafeTensorsWriter(entries: entries, metadata: ["format": "pt", "lora_adapter_metadata": adapterMetadataJSON])
        try AtomicFile.write(writer.encoded(), to: path)
    }
}

/// Training's own errors: one line each, naming the file or the setting.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case write(path: String, reason: String)
    case checkpoint(path: String, reason: String)
    case data(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let text): return text
        case .write(let path, let reason): return "cannot write \(path): \(reason)"
        case .checkpoint(let path, let reason): return "\(path): \(reason)"
        case .data(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// Whole-file writes that never leave a half file under the final name: a temporary beside it, written, fsync'd,
/// renamed over the target, and the folder fsync'd so the rename survives a crash; a full disk is one line.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + ".\(getpid()).partial"
        func fail(_ what: String) -> TrainingError {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            return .write(path: path, reason: "\(what): \(reason)")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("create") }
        var written = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return fsync(fd) == 0
        }
        guard ok else { let error = fail("write"); close(fd); throw error }
        guard close(fd) == 0 else { throw fail("close") }
        guard rename(temporary, path) == 0 else { throw fail("rename") }
        let dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
    }
}
