import Foundation
import ImageIO
import SafeTensors
import Tensors
import Testing
@testable import Training

/// `sd3 train-lora` on bad input: each failure is one line on standard error, a failed exit, and no file left in the
/// output folder (no LoRA, checkpoint or partial file), except where the run had already finished its steps.
@Suite(.serialized) struct TrainCommandInputTests {
    static let tiny = TrainCommandTests.tiny

    /// The error line of a failed run that printed nothing else (`allowingProgress`: a run that got as far as its
    /// steps prints its progress first).
    static func failure(_ arguments: [String], allowingProgress: Bool = false) throws -> String {
        let result = try TrainCommandTests.run(["train-lora", "--threads", "1", "--resolution", "32", "--steps", "2", "--seed", "1"] + arguments)
        #expect(result.status != 0 && result.stdout.isEmpty, "\(result)")
        let lines = result.stderr.split(separator: "\n")
        let errors = lines.filter { $0.hasPrefix("Error: ") }
        #expect(errors.count == 1 && lines.last?.hasPrefix("Error: ") == true, "\(result.stderr)")
        if !allowingProgress { #expect(lines.count == 1, "\(result.stderr)") }
        return String(errors.first ?? "")
    }

    static func empty(_ folder: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty
    }

    static func png(_ path: String, _ width: Int, _ height: Int) throws {
        try Data(try PNGFile.encode(TrainingDataTests.image(width, height))).write(to: URL(fileURLWithPath: path))
    }

    @Test func badDataIsOneLineAndLeavesNothing() throws {
        let out = LoraOutputTests.folder("inputs-out")
        let output = out + "/a.safetensors"
        let empty = LoraOutputTests.folder("inputs-empty")
        #expect(try Self.failure(["--model", Self.tiny, "--data", empty, "--output", output]).contains("no images"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", empty + "/missing", "--output", output]).contains("cannot read the data folder"))
        let small = LoraOutputTests.folder("inputs-small")
        try Self.png(small + "/a.png", 16, 40)
        try Data("a caption".utf8).write(to: URL(fileURLWithPath: small + "/a.txt"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", small, "--output", output]).contains("16×40 is smaller than the resolution 32"))
        let latin1 = LoraOutputTests.folder("inputs-latin1")
        try Self.png(latin1 + "/a.png", 32, 32)
        try Data([0x63, 0x61, 0x66, 0xE9]).write(to: URL(fileURLWithPath: latin1 + "/a.txt"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", latin1, "--output", output]).contains("a.txt: the caption is not valid UTF-8"))
        let unreadable = LoraOutputTests.folder("inputs-unreadable")
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: unreadable + "/a.png"))
        try Data("a caption".utf8).write(to: URL(fileURLWithPath: unreadable + "/a.txt"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", unreadable, "--output", output]).contains("a.png: unreadable"))
        #expect(Self.empty(out))
    }

    @Test func badModelsAndFlagsAreOneLine() throws {
        let data = try TrainCommandTests.dataFolder("inputs-data"), out = LoraOutputTests.folder("inputs-flags")
        let output = out + "/a.safetensors"
        #expect(try Self.failure(["--model", out + "/no-model", "--data", data, "--output", output]).contains("no-model"))
        // The tiny model with a VAE that has only its decoder.
        let decoderOnly = LoraOutputTests.folder("inputs-decoder-only")
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.tiny) where name != "vae" {
            try FileManager.default.createSymbolicLink(atPath: decoderOnly + "/" + name, withDestinationPath: Self.tiny + "/" + name)
        }
        try FileManager.default.createDirectory(atPath: decoderOnly + "/vae", withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: Self.tiny + "/vae/config.json", toPath: decoderOnly + "/vae/config.json")
        let vae = try SafeTensorsFile(path: Self.tiny + "/vae/diffusion_pytorch_model.safetensors")
        let kept = try vae.names.filter { !$0.hasPrefix("encoder.") }.map { SafeTensorsWriter.Entry($0, try vae.tensor($0)) }
        try SafeTensorsWriter(entries: kept).write(to: decoderOnly + "/vae/diffusion_pytorch_model.safetensors")
        #expect(try Self.failure(["--model", decoderOnly, "--data", data, "--output", output]).contains("its VAE has no encoder"))

        let flags: [([String], String)] = [
            (["--rank", "0"], "--rank must be between 1 and 4096, not 0"),
            (["--steps", "0"], "--steps must be at least 1, not 0"),
            (["--lr", "0"], "--lr must be a positive number"),
            (["--lr=-1e-4"], "--lr must be a positive number"),
            (["--lr", "nan"], "--lr must be a positive number"),
            (["--resolution", "40"], "--resolution must be a positive multiple of 16, not 40"),
            (["--resolution", "128"], "this model trains at multiples of 4 up to 64 pixels"),
            (["--precision", "fp8"], "--precision must be fp32 or bf16"),
            (["--lr-scheduler", "polynomial"], "--lr-scheduler must be one of constant, constant_with_warmup, cosine, linear, not 'polynomial'"),
            (["--lr-warmup-steps=-1"], "--lr-warmup-steps must be 0 or more, not -1"),
        ]
        for (extra, expected) in flags {
            let line = try Self.failure(["--model", Self.tiny, "--data", data, "--output", output] + extra)
            #expect(line.contains(expected), "\(extra): \(line)")
        }
        #expect(try Self.failure(["--model", Self.tiny, "--data", data, "--output", out + "/a.txt"]).contains("NAME.safetensors"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", data, "--output", out + "/missing/a.safetensors"]).contains("does not exist"))
        // Read-only to root too: /proc/self's folder refuses new files.
        #expect(try Self.failure(["--model", Self.tiny, "--data", data, "--output", "/proc/self/a.safetensors"]).contains("not writable"))
        #expect(Self.empty(out))
    }

    /// A checkpoint of another rank, alpha or model, or a file that is no checkpoint: one line, before any step.
    @Test func foreignCheckpointsAreOneLine() throws {
        let data = try TrainCommandTests.dataFolder("inputs-resume-data"), out = LoraOutputTests.folder("inputs-resume")
        let made = try TrainCommandTests.run(TrainCommandTests.train(data: data, output: out + "/a.safetensors", steps: 2))
        #expect(made.status == 0, "\(made.stderr)")
        let checkpoint = out + "/a.checkpoint", other = LoraOutputTests.folder("inputs-resume-other")
        #expect(try Self.failure(["--model", Self.tiny, "--data", data, "--output", other + "/b.safetensors", "--resume", checkpoint, "--rank", "2"])
            .contains("has rank 4; this run asks for rank 2"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", data, "--output", other + "/b.safetensors", "--resume", checkpoint, "--alpha", "8"])
            .contains("has alpha 4; this run asks for alpha 8"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", data, "--output", other + "/b.safetensors", "--resume", data + "/img0.png"])
            .contains("not a readable training checkpoint"))
        #expect(try Self.failure(["--model", Self.tiny, "--data", data, "--output", other + "/b.safetensors", "--resume", other + "/none"])
            .contains("no such file"))
        // Another model: the tiny model with one transformer weight changed (same header, other data).
        let changed = LoraOutputTests.folder("inputs-other-model")
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.tiny) where name != "transformer" {
            try FileManager.default.createSymbolicLink(atPath: changed + "/" + name, withDestinationPath: Self.tiny + "/" + name)
        }
        try FileManager.default.createDirectory(atPath: changed + "/transformer", withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: Self.tiny + "/transformer/config.json", toPath: changed + "/transformer/config.json")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: LoraOutputTests.transformerPath)))
        bytes[bytes.count - 1000] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: changed + "/transformer/diffusion_pytorch_model.safetensors"))
        #expect(try Self.failure(["--model", changed, "--data", data, "--output", other + "/b.safetensors", "--resume", checkpoint])
            .contains("belongs to model"))
        #expect(Self.empty(other))
    }

    /// A full disk while the LoRA is saved (a 96 KiB tmpfs that holds the checkpoint but not both files): one line
    /// that names the checkpoint to resume from, no partial file; resuming from it elsewhere writes the same LoRA.
    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root")) func fullDiskIsOneLine() throws {
        let data = try TrainCommandTests.dataFolder("inputs-disk-data"), full = LoraOutputTests.folder("inputs-disk")
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=96k", "tmpfs", full]) == 0 else {
            Issue.record("mount -t tmpfs failed")
            return
        }
        defer { _ = run("/bin/umount", [full]) }
        try Data(count: 20_000).write(to: URL(fileURLWithPath: full + "/filler"))
        let line = try Self.failure(TrainCommandTests.train(data: data, output: full + "/a.safetensors", steps: 2).dropFirst().map { $0 },
                                    allowingProgress: true)
        #expect(line.contains("No space left on device") && line.contains("--resume \(full)/a.checkpoint"), "\(line)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: full)) == ["filler", "a.checkpoint"])
        let elsewhere = LoraOutputTests.folder("inputs-disk-elsewhere"), reference = LoraOutputTests.folder("inputs-disk-reference")
        let resumed = try TrainCommandTests.run(TrainCommandTests.train(data: data, output: elsewhere + "/a.safetensors", steps: 2,
                                                                        extra: ["--resume", full + "/a.checkpoint"]))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try TrainCommandTests.run(TrainCommandTests.train(data: data, output: reference + "/a.safetensors", steps: 2)).status == 0)
        #expect(try TrainCommandTests.bytes(elsewhere + "/a.safetensors") == (try TrainCommandTests.bytes(reference + "/a.safetensors")))
    }

    func run(_ program: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
