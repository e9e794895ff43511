import ArgumentParser
import Foundation
import ImageIO
import ImageMetadata
import RegularFiles
import SafeTensors
import SD3
import StudioCore
import Tensors

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Make an image from a prompt (txt2img), or from a prompt and an image (img2img, --init-image).")

    @Option(help: "A diffusers SD3 folder, a Hugging Face repo id in the local cache (ORG/NAME) or a single-file checkpoint (SD3 Medium, SD3.5 Medium/Large). Default: $SD3_MODEL, else the demo model in models/sd3-demo.")
    var model: String?
    @OptionGroup var files: ModelFiles
    @Option(name: .shortAndLong, help: "What to draw.") var prompt: String?
    @Option(name: [.customShort("n"), .long], help: "What to avoid (encoded even when empty, as diffusers does).") var negativePrompt: String?
    @Option(name: [.customShort("W"), .long], help: "Image width in pixels (default: the model's; a multiple of 16 for SD3).") var width: Int?
    @Option(name: [.customShort("H"), .long], help: "Image height in pixels (default: the model's).") var height: Int?
    @Option(help: "Denoising steps (default 28).") var steps: Int?
    @Option(name: [.customShort("g"), .long], help: "Classifier-free guidance scale, ≤ 1 turns guidance off (default 7).") var guidance: Double?
    @Option(help: "Seed (0…2⁶⁴−1; torch uses the low 32 bits). Default: a random one, printed and recorded.") var seed: UInt64?
    @Option(help: "Variation seed (A1111's): the noise is moved toward this seed's noise by --variation-strength.") var variationSeed: UInt64?
    @Option(help: "How far toward the variation seed, 0…1 (0: the seed's image, 1: the variation seed's).") var variationStrength: Double?
    @Option(help: "Scheduler shift (default: the model's scheduler config).") var shift: Double?
    @Option(help: "euler (the model's FlowMatchEulerDiscreteScheduler; default) or flash (Flash-SD3's: each step predicts the image and re-noises it from the seed's generator).")
    var scheduler: String?
    @Option(help: "A few-step recipe (a model or LoRA with its steps, guidance, shift, scheduler and T5): a name in the user's or the built-in recipes folder (hyper-8, flash-4, sd35-large-turbo, sd35-medium-turbo) or a .toml path; flags given override it.")
    var recipe: String?
    @Option(help: "T5 tokens, 1…512 (default 256).") var maxSequenceLength: Int?
    @Flag(help: "Do not load T5-XXL (its embeddings become zeros; saves memory and time).") var noT5 = false
    @Option(help: "T5-XXL weights: on (as --precision), int8 (weight-only int8: half of bf16's memory), off (as --no-t5), or a T5 .safetensors file for a single-file --model.")
    var t5: String?
    @Option(help: "fp32 (parity, default) or bf16 weights.") var precision: String?
    @Option(help: "onednn (default) or openblas for this machine; or ComfyUI servers: comfyui://HOST:PORT (comfyuis:// for TLS), several separated by commas, or a [[backends]] name from the config. With a server, --model, --clip-l, --clip-g, --t5, --vae and --lora name files on it.")
    var backend: String?
    @Option(help: "ComfyUI backends: a file in the server's vae folder (default: the checkpoint's own).") var vae: String?
    @Option(help: "Make N images, seeds SEED…SEED+N−1 (ComfyUI backends: spread over the servers).") var count: Int?
    @Option(help: "With --backend local,comfyui://…: the local engine's model (default: the config's, $SD3_MODEL or the demo).") var localModel: String?
    @Option(help: "Engine threads (default: the config's, else all cores).") var threads: Int?
    @Option(help: "Settings file (default: $XDG_CONFIG_HOME/sd3-studio/config.toml): its model, threads and [defaults] apply below the flags.")
    var config: String?
    @Option(help: "img2img: the starting image (PNG or JPEG), turned upright by its EXIF orientation and resized to the output size.") var initImage: String?
    @Option(help: "img2img: how much of the schedule to run, 0…1 (default 0.6).") var strength: Double?
    @Option(help: "Skip-layer guidance scale (diffusers' default 2.8); turns it on with --skip-layers.") var skipLayerGuidance: Double?
    @Option(help: "Blocks skipped by skip-layer guidance (default 7,8,9, as for SD3.5 Medium).") var skipLayers: String?
    @Option(help: "Take every setting from a PNG written by sd3 (its sd3-studio chunk), LoRAs included (at their recorded paths or by name in the models folder's loras/); flags given override it.") var paramsFrom: String?
    @Option(name: .customLong("lora"), help: "A LoRA .safetensors (diffusers, kohya or ComfyUI layout) or PEFT folder, merged at STRENGTH (default 1): FILE[:STRENGTH]; repeatable.")
    var loras: [String] = []
    @Option(name: .shortAndLong, help: "The PNG to write (default: sd3-SEED.png; an existing file is never overwritten).") var output: String?
    @Option(help: "Also write the final latents (transformer space) to this .safetensors file.") var saveLatents: String?
    @Option(help: "vae (default) or taesd: what turns the final latents into the image (taesd: TAESD3, about a second at 512², draft quality).")
    var decoder: String?
    @Option(help: "A TAESD3 (madebyollin/taesd3: its diffusers folder, a folder with taesd3_decoder.safetensors, or that file) for --decoder taesd and previews. Default: the config's taesd, else one in the models folder or the Hugging Face cache.")
    var taesd: String?
    @Option(help: "Every N steps (and at the last), write the predicted image x0 to --preview-path: through TAESD3 at half the image's side when there is one, else the latent→RGB projection at latent size.")
    var previewEvery: Int?
    @Option(help: "The preview PNG, replaced atomically at each preview (needs --preview-every).") var previewPath: String?
    @Flag(help: "Keep every model loaded for the whole run instead of loading each for its phase and releasing it after.")
    var keepLoaded = false
    @Flag(help: "Print the time of each phase and the peak memory at the end.") var report = false
    @Flag(help: "Do not add the image to the history database (sd3 history list).") var noHistory = false
    @Flag(help: "Print each setting, its value and where it came from (flag, recipe, recalled PNG, config file, model defaults, built-in), then stop without generating.")
    var explain = false

    func run() throws {
        let settings = try ConfigFile.loadForCommand(config, environment: ProcessInfo.processInfo.environment)
        let c = settings.defaults
        let recalled = try paramsFrom.map(Self.recall)
        if let workers = try Self.servers(backend ?? recalled?.metadata.backend, config: settings) {
            return try runRemote(on: workers.servers, local: workers.local, settings: settings, recalled: recalled?.metadata)
        }
        if localModel != nil { throw CommandError("--local-model is for --backend local,comfyui://…; give the model with --model") }
        if vae != nil { throw CommandError("--vae names a file on a ComfyUI server: give --backend comfyui://HOST:PORT (a local model brings its own VAE)") }
        if count != nil { throw CommandError("--count spreads images over ComfyUI servers: give --backend comfyui://HOST:PORT") }
        let backend = self.backend.map { $0 == "local" ? "onednn" : $0 } ?? "onednn"
        let recipe = try self.recipe.map { try RecipeCatalog.standard(environment: ProcessInfo.processInfo.environment).load($0) }
        guard let model = ModelChoice.resolve(given: model ?? recipe?.model ?? recalled?.modelPath, configured: settings.model,
                                              environment: ProcessInfo.processInfo.environment) else {
            throw ValidationError("no model: give --model DIR (a diffusers SD3 folder); the demo model was not found in \(DemoModel.folderName)")
        }
        if let recipe, let own = recipe.model, own != model { log("note: --model overrides recipe \(recipe.name)'s model \(own)") }
        let d = try ModelDefaults.resolved(ModelSource(model, extras: files.extras(t5File: nil)))
        let modes = ["on", "int8", "off"]
        let t5File = t5.flatMap { modes.contains($0) ? nil : $0 }
        var layers = [GenerationSettings.Layer(.model, model, SettingsLayer(d)),
                      GenerationSettings.Layer(.config, config ?? ConfigFile.defaultPath(environment: ProcessInfo.processInfo.environment), SettingsLayer(config: c)),
                      GenerationSettings.Layer(.given, "flags", try givenLayer(t5File: t5File))]
        if let recipe { layers.append(GenerationSettings.Layer(.recipe, recipe.name, SettingsLayer(recipe: recipe))) }
        if let recalled, let paramsFrom {
            do throws(SettingsError) {
                layers.append(GenerationSettings.Layer(.recalled, paramsFrom, try SettingsLayer(recalled: recalled.metadata, file: paramsFrom)))
            } catch { throw CommandError(error.description) }
        }
        let resolved = GenerationSettings(layers)
        if explain {
            print(resolved.explanation().joined(separator: "\n"))
            return
        }
        guard let prompt = resolved.value(\.prompt) else { throw ValidationError("give --prompt") }
        let precision = resolved.value(\.precision) ?? .fp32
        guard let backend = BackendKind(rawValue: backend) else { throw CommandError("--backend must be onednn, openblas, comfyui://HOST:PORT or a configured backend's name, not '\(backend.oneLine)'") }
        let threads = self.threads ?? settings.threads ?? ProcessInfo.processInfo.activeProcessorCount
        guard (1...1024).contains(threads) else { throw CommandError("--threads must be between 1 and 1024") }
        let r = recalled?.metadata
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = resolved.value(\.negativePrompt) ?? ""
        p.steps = resolved.value(\.steps) ?? 28
        p.guidanceScale = resolved.value(\.guidance) ?? 7
        p.seed = resolved.value(\.seed) ?? UInt64.random(in: 0...UInt64(UInt32.max))
        // A recalled image's variation (or its absence) wins over the config's, so --params-from reproduces it.
        let configured = c.variationSeed.map { VariationSeed(seed: $0, strength: c.variationStrength ?? 0.1) }
        p.variation = try Self.variation(seed: variationSeed, strength: variationStrength, recalled: r == nil ? configured : r?.variation)
        p.maxSequenceLength = resolved.value(\.maxSequenceLength) ?? 256
        p.shift = resolved.value(\.shift)
        p.scheduler = resolved.value(\.scheduler) ?? .euler
        p.recipe = recipe?.name
        try applyInitImageAndSkipLayers(&p, recalled: r, defaults: c)
        try checkNumbers(p)
        let t5Choice = resolved.value(\.t5) ?? .on
        if noT5 && t5Choice != .off { throw ValidationError("--no-t5 contradicts --t5 \(t5Choice.rawValue)") }
        let useT5 = t5Choice != .off
        let target = try Self.outputPath(output, seed: p.seed)
        // Temporary files of earlier runs killed while writing there (their processes are gone).
        PartialFiles.sweep(URL(fileURLWithPath: target).deletingLastPathComponent().path)
        if let saveLatents { try Self.checkWritable(saveLatents) }
        p.decoder = resolved.value(\.decoder) ?? .vae
        let preview = try Self.previewSettings(every: previewEvery, path: previewPath)

        var options = LoadOptions()
        (options.precision, options.backend, options.threads) = (precision, backend, threads)
        options.t5 = useT5 ? t5Choice : .off
        options.withVAEEncoder = p.initImage != nil
        options.staged = !keepLoaded
        options.files = files.extras(t5File: t5File)
        // Looked for only when something uses it: a broken TAESD3 lying in the models folder never stops a VAE run.
        if taesd != nil || p.decoder == .taesd || preview != nil {
            options.taesd = TAESDSource.choose(flag: taesd, configured: settings.taesd.map(ConfigFile.expandingTilde),
                                               environment: ProcessInfo.processInfo.environment)
        }
        let recipeLora = try recipe?.loraPath(folders: LoraCatalog.folders(environment: ProcessInfo.processInfo.environment))
        if let recipe, let recipeLora {
            // The recipe's LoRA first, then the flags'; a --lora naming the same file sets its strength instead.
            let given = try loras.map(LoraChoice.init(parsing:))
            let own = given.contains { $0.path == recipeLora } ? [] : [LoraChoice(path: recipeLora, strength: recipe.loraStrength)]
            options.loras = own + given
        } else if loras.isEmpty, let r, let recorded = r.loras, !recorded.isEmpty {
            options.loras = try Self.recalledLoras(recorded, from: paramsFrom!, folders: LoraCatalog.folders(environment: ProcessInfo.processInfo.environment))
            options.loraMode = r.loraMode.flatMap(LoraMode.init(recordedName:)) ?? .merged
        } else {
            options.loras = try loras.map(LoraChoice.init(parsing:))
        }
        let started = Date()
        log("loading \(model)")
        let pipeline = try StableDiffusion3Pipeline(path: model, options: options)
        let defaultSide = pipeline.transformerConfig.sampleSize * pipeline.vaeConfig.scaleFactor
        p.width = resolved.value(\.width) ?? defaultSide
        p.height = resolved.value(\.height) ?? defaultSide
        try pipeline.validate(p)
        if let preview {
            log("previews every \(preview.every) step\(preview.every == 1 ? "" : "s") to \(preview.path): x0 " + (pipeline.taesdSource.map { "through TAESD3 \($0.path)" } ?? "by the latent→RGB projection (no TAESD3 given or found)"))
        }
        Interrupt.install()
        let variationText = p.variation.map { String(format: ", variation seed %llu at %g", $0.seed, $0.strength) } ?? ""
        let recipeText = recipe.map { ", recipe \($0.name)" } ?? ""
        let schedulerText = p.scheduler == .euler ? "" : ", \(p.scheduler.rawValue) scheduler"
        log(String(format: "loaded in %.1f s; seed %llu%@, %d×%d, %d steps, guidance %g%@%@%@", Date().timeIntervalSince(started), p.seed,
                   variationText, p.width, p.height, p.steps, p.guidanceScale, pipeline.hasT5 ? "" : ", T5 off", schedulerText, recipeText))
        var phases: [(String, Double)] = [("open model", Date().timeIntervalSince(started))]
        let encodeStart = Date()
        let conditioning = try pipeline.encode(p, onPhase: { phases.append(($0, $1)) })
        for warning in conditioning.warnings { log("warning: \(warning)") }
        log(String(format: "prompt encoded in %.2f s", Date().timeIntervalSince(encodeStart)))
        let progress = ProgressLine()
        var finalLatents: Tensor?
        let image: RGBImage
        do {
            image = try pipeline.generate(p, conditioning: conditioning, isCancelled: { Interrupt.requested },
                                          onPhase: { phases.append(($0, $1)) }, onStep: { step in
                progress.update(step: step.index + 1, of: step.total)
                if step.index + 1 == step.total { finalLatents = step.latents }
                if let preview, (step.index + 1) % preview.every == 0 || step.index + 1 == step.total {
                    try PNGFile.write(try pipeline.preview(step), to: preview.path)
                }
            })
            progress.finish()
        } catch is CancellationError {
            progress.finish()
            log("cancelled; nothing written")
            throw ExitCode(130)
        }
        let seconds = Date().timeIntervalSince(started)
        var metadata = ImageMetadata(parameters: p, model: model, t5: pipeline.hasT5,
                                     shift: p.shift ?? pipeline.schedulerConfig.shift, precision: precision.rawValue, seconds: seconds)
        if pipeline.hasT5 && options.t5Int8 { metadata.t5Weights = "int8" }
        metadata.record(loras: pipeline.loras, mode: options.loraMode)
        if let saveLatents, let finalLatents {
            try SafeTensorsWriter(entries: [.init("latents", finalLatents)], metadata: ["sd3-studio": metadata.json]).write(to: saveLatents)
        }
        let written = try Self.writeNew(image, metadata: metadata, at: target)
        if !noHistory { Self.addToHistory(file: written, metadata: metadata) }
        print(written)
        log(String(format: "done in %.1f s", seconds))
        if report {
            for (name, time) in phases where time >= 0.0005 || name.hasPrefix("load") {
                log("  " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%8.2f s", time))
            }
            log(String(format: "  peak RSS            %8.2f GB%@", Double(peakResidentBytes()) / 1e9, keepLoaded ? "" : " (staged loading)"))
        }
    }

    /// img2img's image and strength, and skip-layer guidance, from the flags or else the recalled PNG.
    /// The flags' layer of the settings: what was given on the command line, checked.
    func givenLayer(t5File: String?) throws -> SettingsLayer {
        var layer = SettingsLayer()
        (layer.prompt, layer.negativePrompt, layer.width, layer.height) = (prompt, negativePrompt, width, height)
        (layer.steps, layer.guidance, layer.shift, layer.seed, layer.maxSequenceLength) = (steps, guidance, shift, seed, maxSequenceLength)
        if let precision {
            guard let value = Precision(rawValue: precision) else { throw ValidationError("--precision must be fp32 or bf16, not '\(precision.oneLine)'") }
            layer.precision = value
        }
        if let scheduler {
            guard let kind = SchedulerKind(rawValue: scheduler) else { throw CommandError("--scheduler must be euler or flash, not '\(scheduler.oneLine)'") }
            layer.scheduler = kind
        }
        if let decoder {
            guard let value = ImageDecoder(rawValue: decoder) else { throw CommandError("--decoder must be vae or taesd, not '\(decoder.oneLine)'") }
            layer.decoder = value
        }
        // A T5 file given for a single-file model means T5 on; --no-t5 is off.
        layer.t5 = t5File != nil ? .on : t5.flatMap(T5Mode.init(rawValue:)) ?? (noT5 ? .off : nil)
        return layer
    }

    func applyInitImageAndSkipLayers(_ p: inout GenerationParameters, recalled r: ImageMetadata?, defaults c: ConfigFile.Defaults) throws {
        if let initImage {
            // PNG or JPEG, turned upright by its EXIF orientation, as diffusers' load_image does (exif_transpose); a FIFO
            // or device is refused unopened.
            p.initImage = try ImageFile.read(initImage, upright: true)
            p.strength = strength ?? r?.strength ?? c.strength ?? 0.6
        } else if r?.strength != nil {
            throw CommandError("\(paramsFrom!) was made by img2img: give --init-image")
        }
        if let scale = skipLayerGuidance ?? r?.skipLayerScale {
            var slg = SkipLayerGuidance(layers: try skipLayers.map(Self.layers) ?? r?.skipLayers ?? [7, 8, 9])
            slg.scale = scale
            if let start = r?.skipLayerStart, let stop = r?.skipLayerStop { (slg.start, slg.stop) = (start, stop) }
            p.skipLayerGuidance = slg
        }
    }

    /// Every finished image is a history row, as in the studio; the image is already written, so a database
    /// that cannot be opened costs a warning, not the run.
    static func addToHistory(file: String, metadata: ImageMetadata) {
        let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
        do {
            let store = try StudioStore(path: StudioStore.defaultPath(environment: ProcessInfo.processInfo.environment))
            if let notice = store.notice { log("note: \(notice)") }
            _ = try store.add(file: absolute, date: Date(), metadata: metadata)
        } catch {
            log("warning: not added to the history: \(error)")
        }
    }

    /// The model folder and settings recorded in a PNG's `sd3-studio` chunk.
    static func recall(_ path: String) throws -> (metadata: ImageMetadata, modelPath: String?) {
        try requirePNGFile(path)
        guard let metadata = try MetadataReader.ownMetadata(PNGFile.read(path).text, name: path) else {
            throw CommandError("\(path): no sd3-studio metadata (not written by sd3 generate)")
        }
        return (metadata, metadata.modelPath)
    }

    /// The LoRAs a PNG records, found at their recorded paths or by name in the LoRA folders; one that is missing, or
    /// found with another hash, is an error naming it (never a silently different image).
    static func recalledLoras(_ records: [ImageMetadata.LoraRecord], from png: String, folders: [String]) throws -> [LoraChoice] {
        try records.map { record in
            let location = LoraCatalog.locate(record, folders: folders)
            guard let path = location.path else {
                let recorded = record.path.map { "at \($0) nor " } ?? ""
                throw CommandError("\(png) was made with LoRA \(record.name) (hash \(record.hash)), not found \(recorded)in \(folders.joined(separator: " or ")): put it there or give --lora FILE[:STRENGTH]")
            }
            guard location.hashMatches else {
                throw CommandError("\(png) was made with LoRA \(record.name) (hash \(record.hash)), but \(path) has hash \(LoraFile.shortHash(path: path)): give --lora \(path):\(ImageMetadata.number(record.strength)) to use it anyway")
            }
            log("LoRA \(record.name) at \(ImageMetadata.number(record.strength)) from \(path)")
            return LoraChoice(path: path, strength: record.strength)
        }
    }

    /// `--preview-every N` with `--preview-path P`: both or neither, N in 1…1000, P a PNG file (not a folder or device)
    /// in a writable folder, checked before any work.
    static func previewSettings(every: Int?, path: String?) throws -> (every: Int, path: String)? {
        switch (every, path) {
        case (nil, nil): return nil
        case (nil, _?): throw CommandError("--preview-path needs --preview-every N")
        case (_?, nil): throw CommandError("--preview-every needs --preview-path FILE.png")
        case let (every?, path?):
            guard (1...1000).contains(every) else { throw CommandError("--preview-every must be between 1 and 1000, not \(every)") }
            guard !path.isEmpty else { throw CommandError("--preview-path is empty: give a PNG file name") }
            if let kind = RegularFile.kind(path) { throw CommandError("--preview-path \(path) is \(kind), not a PNG file") }
            try checkWritable(path)
            return (every, path)
        }
    }

    /// The flags' variation, else the recalled one; a strength outside 0…1 or half a pair is an error naming the flag.
    static func variation(seed: UInt64?, strength: Double?, recalled: VariationSeed?) throws -> VariationSeed? {
        if let strength, !(strength.isFinite && (0...1).contains(strength)) {
            throw CommandError("--variation-strength must be between 0 and 1, not \(strength)")
        }
        switch (seed ?? recalled?.seed, strength ?? recalled?.strength) {
        case (nil, nil): return nil
        case (nil, _?): throw CommandError("--variation-strength needs --variation-seed")
        case (_?, nil): throw CommandError("--variation-seed needs --variation-strength (0…1)")
        case let (seed?, strength?): return VariationSeed(seed: seed, strength: strength)
        }
    }

    /// A PNG the user names is read only when it is a regular file: a FIFO would block the read forever, /dev/zero
    /// never ends (a missing file is left to the PNG reader's own message).
    static func requirePNGFile(_ path: String) throws {
        if let kind = RegularFile.kind(path) { throw CommandError("\(path): is \(kind), not a PNG file") }
    }

    /// The numbers that reach float32 arithmetic, checked before anything loads: finite and in range, else one line
    /// naming the flag (or the recalled PNG's field) and the value.
    private func checkNumbers(_ p: GenerationParameters) throws {
        func name(_ flag: String, given: Bool, field: String) -> String {
            given ? flag : paramsFrom.map { "\(field) recalled from \($0)" } ?? "\(flag) (from the config file)"
        }
        var problems: [String?] = [
            GenerationLimits.problem(name("--guidance", given: guidance != nil, field: "guidanceScale"), p.guidanceScale, GenerationLimits.guidance),
            p.shift.flatMap { GenerationLimits.problem(name("--shift", given: shift != nil, field: "shift"), $0, GenerationLimits.shift) },
            p.variation.flatMap { GenerationLimits.problem(name("--variation-strength", given: variationStrength != nil, field: "variationStrength"), $0.strength, 0...1) },
            (1...1000).contains(p.steps) ? nil : "\(name("--steps", given: steps != nil, field: "steps")) \(p.steps): must be between 1 and 1000",
        ]
        if p.initImage != nil {
            problems.append(GenerationLimits.problem(name("--strength", given: strength != nil, field: "strength"), p.strength, 0...1))
        }
        if let slg = p.skipLayerGuidance {
            let flag = name("--skip-layer-guidance", given: skipLayerGuidance != nil, field: "skipLayerScale")
            problems.append(GenerationLimits.problem(flag, slg.scale, GenerationLimits.skipLayerScale))
            problems.append(GenerationLimits.problem(name("skip-layer start", given: false, field: "skipLayerStart"), slg.start, 0...1))
            problems.append(GenerationLimits.problem(name("skip-layer stop", given: false, field: "skipLayerStop"), slg.stop, 0...1))
        }
        if let problem = problems.compactMap({ $0 }).first { throw CommandError(problem) }
    }

    static func layers(_ text: String) throws -> [Int] {
        let layers = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !layers.isEmpty, layers.allSatisfy({ $0 != nil }) else { throw CommandError("--skip-layers must be numbers separated by commas, e.g. 7,8,9") }
        return layers.map { $0! }
    }

    /// Fails early, before any work, when the file could not be written: its folder is missing or read-only.
    static func checkWritable(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw CommandError("\(path): the folder \(folder) does not exist")
        }
        guard access(folder, W_OK) == 0 else { throw CommandError("\(path): the folder \(folder) is not writable") }
    }

    /// The requested path (inside it when it is a folder), or sd3-SEED.png, checked before any work: an empty name,
    /// a device or FIFO, or a missing or read-only folder is refused. The name is taken when the PNG is written
    /// (`writeNew`): an existing file gets a numbered sibling instead.
    static func outputPath(_ output: String?, seed: UInt64) throws -> String {
        let defaultName = "sd3-\(seed).png"
        guard let output else {
            try checkWritable(defaultName)
            return defaultName
        }
        guard !output.isEmpty else { throw CommandError("--output is empty: give a PNG file name or a folder") }
        var info = stat()
        if stat(output, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR {
                let inside = URL(fileURLWithPath: output).appendingPathComponent(defaultName).path
                try checkWritable(inside)
                return inside
            }
            if let kind = RegularFile.kind(info.st_mode) {
                throw CommandError("--output \(output) is \(kind), not a PNG file or a folder")
            }
        } else if output.hasSuffix("/") {
            throw CommandError("--output \(output): no such folder")
        }
        try checkWritable(output)
        return output
    }

    /// Writes the PNG at `path`, or at the first free `STEM-N.EXT` beside it: never over an existing file, even one
    /// another process makes at the same moment (PNGFile.writeNew links the finished file to a free name).
    static func writeNew(_ image: RGBImage, metadata: ImageMetadata, at path: String, extraText: [(key: String, value: String)] = []) throws -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().path, ext = url.pathExtension.isEmpty ? "png" : url.pathExtension
        let bytes = try PNGFile.encode(image, text: metadata.pngText + extraText)
        guard let written = try PNGFile.writeNew(bytes, tries: 100_000, name: { $0 == 0 ? path : "\(stem)-\($0).\(ext)" }) else {
            throw CommandError("\(path): no free name (\(stem)-1.\(ext) to \(stem)-99999.\(ext) are all taken)")
        }
        return written.path
    }
}

/// Step progress on standard error: a redrawn bar on a terminal, one plain line per step otherwise.
final class ProgressLine {
    private let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    /// The step the run started from (a resumed training run's checkpoint), so s/step counts only this run's steps.
    private let first: Int

    init(from first: Int = 0) { self.first = first }

    /// `detail` goes after the step count (train-lora's loss and running mean).
    func update(step: Int, of total: Int, detail: String = "") {
        let elapsed = Date().timeIntervalSince(start)
        let perStep = elapsed / Double(max(step - first, 1))
        let eta = perStep * Double(total - step)
        let text = String(format: "step %d/%d  %@%.2f s/step  ETA %.0f s", step, total, detail.isEmpty ? "" : detail + "  ", perStep, eta)
        if isTerminal {
            let width = 30, filled = width * step / max(total, 1)
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data("\r\(bar) \(text)\u{1B}[K".utf8))
        } else {
            log(text)
        }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Progress and messages go to standard error so standard output carries only results.
func log(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Ctrl-C asks the running generation to stop between transformer blocks.
enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0
    static var requested: Bool { flag != 0 }
    static func install() {
        signal(SIGINT) { _ in Interrupt.flag = 1 }
        // A blocked SIGINT survives exec: a parent that blocks it (Foundation's Process started from a thread that
        // blocks signals, as test runners' do) would leave Ctrl-C and kill -INT pending forever.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
