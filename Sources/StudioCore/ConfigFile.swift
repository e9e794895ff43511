import Foundation
import SD3
import RegularFiles
import ImageIO
import TOMLKit

/// The user's settings, `$XDG_CONFIG_HOME/sd3-studio/config.toml` (default ~/.config/sd3-studio/config.toml),
/// read by this type alone (docs/architecture.md: one owner per file). Every key is optional; command-line flags override
/// it and it overrides the model's defaults.json. Unknown keys and bad values are errors naming the file, line
/// and key. docs/studio.md ("Config") lists every key with an example.
public struct ConfigFile: Sendable, Equatable {
    public var model: String?
    public var outputFolder: String?
    public var theme: String?
    public var graphics: String?
    public var threads: Int?
    /// A TAESD3 for previews and drafts (`--taesd`): a diffusers folder, a folder of the single files or the decoder file.
    public var taesd: String?
    public var defaults = Defaults()
    public var draft = DraftSettings()
    /// `[[backends]]`: ComfyUI servers by name, for `--backend NAME` and the studio's backend picker.
    public var backends: [Backend] = []

    /// One `[[backends]]` entry: `name`, `url` (comfyui://HOST:PORT or comfyuis://…), and for a server behind a proxy
    /// `token` (sent as `Authorization: Bearer TOKEN`) or `header` ("Name: value"); neither is ever printed. `model`,
    /// `clip_l`, `clip_g`, `t5` and `vae` name the server's files the studio renders with there (as `sd3 generate
    /// --model/--clip-l/--clip-g/--t5/--vae` do).
    public struct Backend: Sendable, Equatable {
        public var name: String
        public var url: String
        public var token: String?
        public var header: String?
        public var model: String?
        public var clipL: String?
        public var clipG: String?
        public var t5: String?
        public var vae: String?
        /// A PEM file of certificates to trust for this server besides the system's (`ca_file`, `~` expanded).
        public var caFile: String?
        public init(name: String, url: String, token: String? = nil, header: String? = nil,
                    model: String? = nil, clipL: String? = nil, clipG: String? = nil, t5: String? = nil, vae: String? = nil) {
            (self.name, self.url, self.token, self.header) = (name, url, token, header)
            (self.model, self.clipL, self.clipG, self.t5, self.vae) = (model, clipL, clipG, t5, vae)
        }

        /// The headers to send: the token's Authorization, then the header as written.
        public var headers: [(name: String, value: String)] {
            var headers: [(name: String, value: String)] = []
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            if let header, let colon = header.firstIndex(of: ":") {
                headers.append((String(header[..<colon]).trimmingCharacters(in: .whitespaces),
                                String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
            return headers
        }
    }

    /// `[defaults]`: the starting value of each field.
    public struct Defaults: Sendable, Equatable {
        public var prompt: String?
        public var negativePrompt: String?
        public var width: Int?
        public var height: Int?
        public var steps: Int?
        public var guidance: Double?
        public var shift: Double?
        public var seed: UInt64?
        public var seedMode: SeedMode?
        public var t5: T5Mode?
        public var precision: PrecisionChoice?
        public var maxSequenceLength: Int?
        public var strength: Double?
        public var variationSeed: UInt64?
        public var variationStrength: Double?
    }

    public init() {}

    /// `$XDG_CONFIG_HOME/sd3-studio` (default ~/.config/sd3-studio).
    public static func folder(environment: [String: String]) -> String {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/sd3-studio" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.config/sd3-studio"
    }

    public static func defaultPath(environment: [String: String]) -> String {
        folder(environment: environment) + "/config.toml"
    }

    /// The file at `path`; a missing file is an empty config unless it was named explicitly (`required`).
    public static func load(path: String, required: Bool) throws(TOMLFileError) -> ConfigFile {
        guard FileManager.default.fileExists(atPath: path) else {
            if required { throw TOMLFileError("\(path): no such config file") }
            return ConfigFile()
        }
        return try parse(TOMLFile.text(path), path: path)
    }

    public static func parse(_ text: String, path: String) throws(TOMLFileError) -> ConfigFile {
        let file = try TOMLFile(path: path, text: text)
        var config = ConfigFile()
        let reader = Reader(file: file, table: nil)
        for key in file.orderedKeys(file.root) {
            let value = file.root[key]!
            switch key {
            case "model": config.model = try reader.string(key, value)
            case "output_folder": config.outputFolder = try reader.string(key, value)
            case "theme": config.theme = try reader.string(key, value)
            case "graphics": config.graphics = try reader.choice(key, value, ["auto"] + GraphicsMode.allCases.map(\.rawValue))
            case "threads": config.threads = try reader.integer(key, value, 1...1024)
            case "taesd": config.taesd = try reader.string(key, value)
            case "defaults": config.defaults = try defaults(file, try reader.table(key, value))
            case "explore": config.draft = try draft(file, try reader.table(key, value))
            case "backends": config.backends = try backends(file, value)
            default:
                throw file.error(key, "unknown key; the top level takes model, output_folder, theme, graphics, threads, taesd, [defaults], [explore] and [[backends]]")
            }
        }
        return config
    }

    private static func backends(_ file: TOMLFile, _ value: TOMLValueConvertible) throws(TOMLFileError) -> [Backend] {
        guard let array = value.array else { throw file.error("backends", "is not a list of tables: write [[backends]] above each server's keys") }
        var backends: [Backend] = []
        // TOMLFile.line reads "[[backends]]" as the table "[backends".
        let reader = Reader(file: file, table: "[backends")
        for element in array {
            guard let table = element.table else { throw file.error("backends", "is not a list of tables: write [[backends]] above each server's keys") }
            var name: String?, url: String?, token: String?, header: String?
            var files = Backend(name: "", url: "")
            for key in file.orderedKeys(table, in: "[backends") {
                let value = table[key]!
                switch key {
                case "name": name = try reader.string(key, value)
                case "url": url = try reader.string(key, value)
                case "token": token = try reader.string(key, value)
                case "header": header = try reader.string(key, value)
                case "model": files.model = try reader.fileName(key, value)
                case "clip_l": files.clipL = try reader.fileName(key, value)
                case "clip_g": files.clipG = try reader.fileName(key, value)
                case "t5": files.t5 = try reader.fileName(key, value)
                case "vae": files.vae = try reader.fileName(key, value)
                case "ca_file": files.caFile = ConfigFile.expandingTilde(try reader.string(key, value))
                default: throw file.error(key, in: "[backends", "unknown key; a [[backends]] entry takes name, url, token, header, ca_file, model, clip_l, clip_g, t5 and vae")
                }
            }
            guard let url else { throw file.error("", in: "[backends", "a [[backends]] entry needs url = \"comfyui://HOST:PORT\"") }
            let scheme = url.range(of: "://").map { url[..<$0.lowerBound].lowercased() }
            guard let scheme, ["comfyui", "comfyuis", "http", "https"].contains(scheme) else {
                throw file.error("url", in: "[backends", "\(url.oneLine) is not comfyui://HOST:PORT or comfyuis://HOST[:PORT]")
            }
            if let header, header.firstIndex(of: ":") == nil || header.contains("\n") || header.contains("\r") {
                throw file.error("header", in: "[backends", "must be one line \"Name: value\" (the value is not shown here)")
            }
            if let token, token.contains(where: { $0.isNewline || $0 == "\r" }) {
                throw file.error("token", in: "[backends", "must be one line (the value is not shown here)")
            }
            var entry = Backend(name: name ?? url, url: url, token: token, header: header,
                                model: files.model, clipL: files.clipL, clipG: files.clipG, t5: files.t5, vae: files.vae)
            entry.caFile = files.caFile
            guard !backends.contains(where: { $0.name == entry.name }) else {
                throw file.error("name", in: "[backends", "'\(entry.name.oneLine)' names two [[backends]] entries")
            }
            backends.append(entry)
        }
        return backends
    }

    private static func defaults(_ file: TOMLFile, _ table: TOMLTable) throws(TOMLFileError) -> Defaults {
        var d = Defaults()
        let reader = Reader(file: file, table: "defaults")
        for key in file.orderedKeys(table, in: "defaults") {
            let value = table[key]!
            switch key {
            case "prompt": d.prompt = try reader.string(key, value)
            case "negative_prompt": d.negativePrompt = try reader.string(key, value)
            case "width": d.width = try reader.integer(key, value, 16...16384)
            case "height": d.height = try reader.integer(key, value, 16...16384)
            case "steps": d.steps = try reader.integer(key, value, 1...1000)
            case "guidance": d.guidance = try reader.number(key, value, 0...100)
            case "shift": d.shift = try reader.number(key, value, 0.001...100)
            case "seed": d.seed = UInt64(try reader.integer(key, value, 0...Int.max))
            case "seed_mode": d.seedMode = SeedMode(rawValue: try reader.choice(key, value, SeedMode.allCases.map(\.rawValue)))
            case "t5": d.t5 = try reader.t5(key, value)
            case "precision": d.precision = PrecisionChoice(rawValue: try reader.choice(key, value, PrecisionChoice.allCases.map(\.rawValue)))
            case "max_sequence_length": d.maxSequenceLength = try reader.integer(key, value, 1...512)
            case "strength": d.strength = try reader.number(key, value, 0...1)
            case "variation_seed": d.variationSeed = UInt64(try reader.integer(key, value, 0...Int.max))
            case "variation_strength": d.variationStrength = try reader.number(key, value, 0...1)
            default:
                throw file.error(key, in: "defaults", "unknown key; [defaults] takes prompt, negative_prompt, width, height, steps, guidance, "
                    + "shift, seed, seed_mode, t5, precision, max_sequence_length, strength, variation_seed and variation_strength")
            }
        }
        return d
    }

    private static func draft(_ file: TOMLFile, _ table: TOMLTable) throws(TOMLFileError) -> DraftSettings {
        var draft = DraftSettings()
        let reader = Reader(file: file, table: "explore")
        for key in file.orderedKeys(table, in: "explore") {
            let value = table[key]!
            switch key {
            case "grid":
                let count = try reader.integer(key, value, 1...16)
                guard DraftSettings.counts.contains(count) else { throw file.error(key, in: "explore", "\(count): the grid takes 4, 9 or 16 seeds") }
                draft.count = count
            case "steps": draft.steps = try reader.integer(key, value, 1...1000)
            case "scale": draft.scale = try reader.number(key, value, 0.01...1)
            default: throw file.error(key, in: "explore", "unknown key; [explore] takes grid, steps and scale")
            }
        }
        return draft
    }

    /// Typed reads that name the key and line when the value is the wrong kind or out of range.
    struct Reader {
        let file: TOMLFile
        let table: String?

        func fail(_ key: String, _ value: TOMLValueConvertible, _ expected: String) -> TOMLFileError {
            file.error(key, in: table, "\(value.shown) is not \(expected)")
        }

        func string(_ key: String, _ value: TOMLValueConvertible) throws(TOMLFileError) -> String {
            guard let s = value.string else { throw fail(key, value, "a string (write it in quotes)") }
            return s
        }

        /// `t5 = true`, `false` or `"int8"`, as `sd3 generate --t5 on|off|int8`.
        func t5(_ key: String, _ value: TOMLValueConvertible) throws(TOMLFileError) -> T5Mode {
            if let b = value.bool { return b ? .on : .off }
            guard value.string == T5Mode.int8.rawValue else { throw fail(key, value, "true, false or \"int8\"") }
            return .int8
        }

        func integer(_ key: String, _ value: TOMLValueConvertible, _ range: ClosedRange<Int>) throws(TOMLFileError) -> Int {
            guard let i = value.int, range.contains(i) else {
                throw fail(key, value, "a whole number from \(range.lowerBound) to \(range.upperBound == Int.max ? "2⁶³−1" : "\(range.upperBound)")")
            }
            return i
        }

        func number(_ key: String, _ value: TOMLValueConvertible, _ range: ClosedRange<Double>) throws(TOMLFileError) -> Double {
            guard let x = value.number, x.isFinite, range.contains(x) else {
                throw fail(key, value, "a number from \(NumberText.text(range.lowerBound)) to \(NumberText.text(range.upperBound))")
            }
            return x
        }

        /// A file name on a server (as its /object_info lists it, subfolders with "/"): one line, not empty.
        func fileName(_ key: String, _ value: TOMLValueConvertible) throws(TOMLFileError) -> String {
            let s = try string(key, value)
            guard !s.trimmingCharacters(in: .whitespaces).isEmpty, !s.contains(where: { $0.isNewline || $0 == "\r" }) else {
                throw fail(key, value, "a file name on the server (one line, e.g. \"sd3.5_medium.safetensors\")")
            }
            return s
        }

        func choice(_ key: String, _ value: TOMLValueConvertible, _ choices: [String]) throws(TOMLFileError) -> String {
            guard let s = value.string, choices.contains(s) else { throw fail(key, value, "one of " + choices.joined(separator: ", ")) }
            return s
        }

        func table(_ key: String, _ value: TOMLValueConvertible) throws(TOMLFileError) -> TOMLTable {
            guard let t = value.table else { throw fail(key, value, "a table: write [\(key)] on its own line, then its keys") }
            return t
        }
    }
}

/// 1 rather than 1.0 in messages.
enum NumberText {
    static func text(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
}

extension ConfigFile {
    /// The file a command reads: `--config PATH` (which must exist), else the default path (which may not).
    public static func loadForCommand(_ explicit: String?, environment: [String: String]) throws(TOMLFileError) -> ConfigFile {
        try load(path: explicit ?? defaultPath(environment: environment), required: explicit != nil)
    }

    /// `~/x` → the user's home folder (Foundation's `NSHomeDirectory`: `$HOME`, else the password database) + `/x`,
    /// for paths written in the config and recipes.
    public static func expandingTilde(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        return NSHomeDirectory() + path.dropFirst()
    }
}
