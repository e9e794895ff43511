import Foundation
import ImageIO
import ImageMetadata
import PollSupport
import SD3
import Testing

/// `sd3 generate` and `sd3 models convert` on hostile numbers and files (docs/testing.md), as separate processes with
/// a 30 s limit: each case exits non-zero by itself (no signal, no hang), prints its error as one line on standard
/// error (after the progress lines of a model that loaded) and leaves nothing in the output folder.
@Suite struct EngineInputCommandTests {
    /// A run's exit (128 + N for signal N, -1 when killed at the deadline), its standard error and seconds.
    static func run(_ arguments: [String], environment: [String: String], limit: Double = 30) -> (status: Int32, stderr: String, seconds: Double) {
        let errorPath = NSTemporaryDirectory() + "sd3-stderr-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = ([TmuxStudio.sd3] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let start = Date()
        guard posix_spawn(&pid, TmuxStudio.sd3, &actions, nil, argv, envp) == 0 else { return (-2, "posix_spawn failed", 0) }
        var status: Int32 = 0
        let exited = Poll.untilBlocking(seconds: limit) {
            let done = waitpid(pid, &status, WNOHANG)
            return done == pid || (done == -1 && errno != EINTR)
        }
        let killed = !exited
        if killed {
            kill(pid, SIGKILL)
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        }
        let stderr = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (killed ? -1 : code, stderr, Date().timeIntervalSince(start))
    }

    struct Case: Sendable, CustomStringConvertible {
        let label: String
        let arguments: [String]
        let fragment: String
        var description: String { label }
    }

    /// Every file a case needs, made once: a model copy with a FIFO for weights, corrupt configs, NaN weights, PNGs.
    final class Files: @unchecked Sendable {
        let root = Support.temporaryFolder()
        var fifo: String { root + "/pipe" }
        init() {
            mkfifo(root + "/pipe", 0o600)
            let tiny = Support.tinyModel
            for name in ["fifo-weights", "zero-scale", "billion-layers", "nan-weights", "groups-3"] {
                try? FileManager.default.copyItem(atPath: tiny, toPath: root + "/" + name)
            }
            let weights = root + "/fifo-weights/transformer/diffusion_pytorch_model.safetensors"
            try? FileManager.default.removeItem(atPath: weights)
            mkfifo(weights, 0o600)
            Self.edit(root + "/zero-scale/vae/config.json", "scaling_factor", "0")
            Self.edit(root + "/billion-layers/transformer/config.json", "num_layers", "1e9")
            Self.edit(root + "/groups-3/vae/config.json", "norm_num_groups", "3")
            Self.fill(root + "/nan-weights/transformer/diffusion_pytorch_model.safetensors", tensor: "proj_out.weight")
            var metadata = Support.metadata()
            metadata.modelPath = tiny
            metadata.guidanceScale = 1e308
            try? PNGFile.write(Support.image, text: [("sd3-studio", metadata.json)], to: root + "/huge-guidance.png")
            var fifoModel = Support.metadata()
            fifoModel.modelPath = root + "/pipe"
            try? PNGFile.write(Support.image, text: [("sd3-studio", fifoModel.json)], to: root + "/fifo-model.png")
            var fifoLora = Support.metadata()
            fifoLora.modelPath = tiny
            fifoLora.loras = [ImageMetadata.LoraRecord(name: "pipe", strength: 1, hash: "0123456789ab", path: root + "/pipe")]
            try? PNGFile.write(Support.image, text: [("sd3-studio", fifoLora.json)], to: root + "/fifo-lora.png")
        }

        /// Sets one top-level key of a config file to a literal JSON value.
        static func edit(_ path: String, _ key: String, _ literal: String) {
            guard let data = FileManager.default.contents(atPath: path),
                  var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
            object[key] = "@@literal@@"
            guard let text = try? JSONSerialization.data(withJSONObject: object).map({ Character(UnicodeScalar($0)) }) else { return }
            try? String(text).replacingOccurrences(of: "\"@@literal@@\"", with: literal).write(toFile: path, atomically: true, encoding: .utf8)
        }

        /// Overwrites a tensor's bytes with 0xFF (every F32 a NaN), found through the header.
        static func fill(_ path: String, tensor: String) {
            guard let data = FileManager.default.contents(atPath: path), data.count > 8 else { return }
            let length = data.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
            guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any],
                  let entry = header[tensor] as? [String: Any], let offsets = entry["data_offsets"] as? [Int] else { return }
            var bytes = [UInt8](data)
            for i in (8 + length + offsets[0])..<(8 + length + offsets[1]) { bytes[i] = 0xFF }
            try? Data(bytes).write(to: URL(fileURLWithPath: path))
        }
    }

    static let files = Files()

    static var cases: [Case] {
        let f = files, tiny = Support.tinyModel, lora = Support.packageRoot + "/Tests/SD3Tests/Fixtures/lora/detail.kohya.safetensors"
        return [
            Case(label: "--guidance 1e39", arguments: ["--model", tiny, "--guidance", "1e39"], fragment: "--guidance 1e+39"),
            Case(label: "--guidance nan", arguments: ["--model", tiny, "--guidance", "nan"], fragment: "--guidance nan"),
            Case(label: "--shift 1e-320", arguments: ["--model", tiny, "--shift", "1e-320"], fragment: "--shift 1e-320"),
            Case(label: "--skip-layer-guidance nan", arguments: ["--model", tiny, "--skip-layer-guidance", "nan", "--skip-layers", "0"], fragment: "--skip-layer-guidance nan"),
            Case(label: "--steps 0", arguments: ["--model", tiny, "--steps", "0"], fragment: "--steps 0"),
            Case(label: "--steps 1e30 (not an integer)", arguments: ["--model", tiny, "--steps", "1e30"], fragment: "'--steps <steps>'"),
            Case(label: "--seed -1", arguments: ["--model", tiny, "--seed", "-1"], fragment: "--seed"),
            Case(label: "--variation-strength nan", arguments: ["--model", tiny, "--variation-seed", "1", "--variation-strength", "nan"],
                 fragment: "--variation-strength must be between 0 and 1, not nan"),
            Case(label: "--skip-layers 1,x", arguments: ["--model", tiny, "--skip-layer-guidance", "2", "--skip-layers", "1,x"], fragment: "--skip-layers"),
            Case(label: "--skip-layers 99", arguments: ["--model", tiny, "--skip-layer-guidance", "2", "--skip-layers", "99"], fragment: "skip layer 99"),
            Case(label: "--lora F:nan", arguments: ["--model", tiny, "--lora", lora + ":nan"], fragment: "strength nan"),
            Case(label: "--lora F:1e19", arguments: ["--model", tiny, "--lora", lora + ":1e19"], fragment: "strength 1e+19"),
            Case(label: "--lora /dev/zero", arguments: ["--model", tiny, "--lora", "/dev/zero"], fragment: "/dev/zero: cannot open: is a device, not a regular file"),
            Case(label: "--lora FIFO", arguments: ["--model", tiny, "--lora", f.fifo], fragment: "is a FIFO, not a regular file"),
            Case(label: "--init-image FIFO", arguments: ["--model", tiny, "--init-image", f.fifo], fragment: "\(f.fifo): is a FIFO, not a PNG or JPEG file"),
            Case(label: "--params-from FIFO", arguments: ["--params-from", f.fifo], fragment: "\(f.fifo): is a FIFO, not a PNG file"),
            Case(label: "--params-from /dev/zero", arguments: ["--params-from", "/dev/zero"], fragment: "/dev/zero: is a device, not a PNG file"),
            Case(label: "--params-from guidanceScale 1e308", arguments: ["--params-from", f.root + "/huge-guidance.png"], fragment: "guidanceScale recalled from"),
            Case(label: "--params-from a PNG whose model is a FIFO", arguments: ["--params-from", f.root + "/fifo-model.png"], fragment: "is a FIFO, not a regular file"),
            Case(label: "--params-from a PNG whose LoRA is a FIFO", arguments: ["--params-from", f.root + "/fifo-lora.png"], fragment: "was made with LoRA pipe"),
            Case(label: "--model /dev/zero", arguments: ["--model", "/dev/zero"], fragment: "is a device, not a regular file"),
            Case(label: "weights are a FIFO", arguments: ["--model", f.root + "/fifo-weights"], fragment: "is a FIFO, not a regular file"),
            Case(label: "VAE scaling_factor 0", arguments: ["--model", f.root + "/zero-scale"], fragment: "scaling_factor is 0.0"),
            Case(label: "transformer num_layers 1e9", arguments: ["--model", f.root + "/billion-layers"], fragment: "num_layers is 1000000000"),
            Case(label: "VAE norm_num_groups 3", arguments: ["--model", f.root + "/groups-3"], fragment: "norm_num_groups 3 does not divide"),
            Case(label: "NaN weights", arguments: ["--model", f.root + "/nan-weights"], fragment: "the model produced NaN/Inf at step 1 (weights or settings)"),
        ]
    }

    @Test(arguments: cases) func badInputFailsCleanly(c: Case) throws {
        let out = Support.temporaryFolder(), data = Support.temporaryFolder()
        defer { for path in [out, data] { try? FileManager.default.removeItem(atPath: path) } }
        let arguments = ["generate", "-p", "a red fox", "-W", "16", "-H", "16", "--steps", "1", "--threads", "1", "--seed", "1",
                         "-o", out + "/image.png"] + c.arguments
        let result = Self.run(arguments, environment: ["XDG_DATA_HOME": data, "XDG_CONFIG_HOME": data])
        #expect(result.status != -1, "\(c): killed after \(result.seconds) s (a hang)")
        #expect(result.status > 0 && result.status < 128, "\(c): exit \(result.status): \(result.stderr)")
        // Progress lines may come first; the error is the one line starting with "Error: ", and the last.
        let lines = result.stderr.split(separator: "\n")
        let progress = ["loading ", "loaded in ", "prompt encoded in "]
        #expect(lines.filter { $0.hasPrefix("Error: ") }.count == 1 && lines.last?.hasPrefix("Error: ") == true
                && lines.last?.contains(c.fragment) == true, "\(c): stderr \(result.stderr)")
        #expect(lines.dropLast().allSatisfy { line in progress.contains { line.hasPrefix($0) } }, "\(c): stderr \(result.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(left.isEmpty, "\(c): left \(left)")
    }

    /// `sd3 convert` of a checkpoint with a key of no component (renamed in place, so offsets still hold): one error line
    /// naming the key, and neither the output nor a temporary folder beside it.
    @Test(.timeLimit(.minutes(10))) func convertOfABrokenCheckpointLeavesNothing() throws {
        let folder = Support.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = Support.packageRoot + "/Tests/SD3Tests/Fixtures/single-file/sd35-incl-clips-t5xxlfp16.safetensors"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        let length = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        let key = "\"model.diffusion_model.final_layer.linear.weight\""
        let range = try #require(header.range(of: key))
        let offset = 8 + header.utf8.distance(from: header.startIndex, to: range.lowerBound) + 1
        bytes.replaceSubrange(offset..<(offset + 5), with: Array("mode_".utf8))
        let broken = folder + "/broken.safetensors"
        try Data(bytes).write(to: URL(fileURLWithPath: broken))
        let result = Self.run(["convert", broken, folder + "/converted"], environment: ["XDG_DATA_HOME": folder])
        #expect(result.status > 0 && result.status < 128, "exit \(result.status): \(result.stderr)")
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
        #expect(errors.count == 1 && errors[0].contains("mode_.diffusion_model.final_layer.linear.weight"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["broken.safetensors"])
    }
}
