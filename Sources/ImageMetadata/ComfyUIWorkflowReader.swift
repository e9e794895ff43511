/// ComfyUI's `workflow` chunk, for PNGs saved with only a workflow: the UI graph, `{"nodes": [{"id", "type", "inputs":
/// [{"name", "link"}], "widgets_values": […]}], "links": [[id, from, slot, to, slot, type]]}`, whose widget values
/// sit in each node class's declared input order (nodes.py `INPUT_TYPES`).
enum ComfyUIWorkflowReader {
    typealias Node = [(String, JSONValue)]

    static func parse(_ text: String, name: String) throws(MetadataError) -> RecalledParameters {
        guard let object = JSONValue.parse(text), object.object != nil else { throw MetadataError("\(name): its ComfyUI workflow chunk is not a JSON object") }
        let nodes = (object["nodes"]?.array ?? []).filter { $0.object != nil }.sorted { ($0["id"]?.double ?? 0) < ($1["id"]?.double ?? 0) }
        let links = object["links"]?.array ?? []
        func widgets(_ n: JSONValue?) -> [JSONValue] { n?["widgets_values"]?.array ?? [] }
        func type(_ n: JSONValue?) -> String { n?["type"]?.string ?? "" }
        func source(_ n: JSONValue, _ input: String) -> JSONValue? {
            guard let link = n["inputs"]?.array?.first(where: { $0["name"]?.string == input })?["link"]?.double,
                  let row = links.first(where: { $0.array?.first?.double == link })?.array, row.count > 1, let from = row[1].double else { return nil }
            return nodes.first { $0["id"]?.double == from }
        }
        guard let sampler = nodes.first(where: { type($0) == "KSampler" || type($0) == "KSamplerAdvanced" }) else {
            throw MetadataError("\(name): its ComfyUI workflow has no KSampler node")
        }
        // KSampler widgets: seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise; KSamplerAdvanced
        // starts with add_noise.
        let w = widgets(sampler)
        let offset = type(sampler) == "KSamplerAdvanced" ? 1 : 0
        func at(_ i: Int) -> JSONValue? { w.indices.contains(i + offset) ? w[i + offset] : nil }
        func prompt(_ input: String) -> String? {
            guard let n = source(sampler, input) else { return nil }
            if type(n) == "ConditioningZeroOut" { return "" }
            return widgets(n).first?.string?.trimmingSpaces
        }
        var p = RecalledParameters(source: .comfyUI, prompt: prompt("positive") ?? "")
        p.negativePrompt = prompt("negative")
        p.seed = at(0)?.seed
        p.steps = at(2)?.int
        p.guidanceScale = at(3)?.double
        p.sampler = at(4)?.string
        p.scheduler = at(5)?.string
        if offset == 0, let denoise = at(6)?.double, denoise < 1 { p.strength = denoise }
        if let latent = source(sampler, "latent_image"), type(latent).hasPrefix("Empty") {
            (p.width, p.height) = (widgets(latent).first?.int, widgets(latent).dropFirst().first?.int)
        }
        var model = source(sampler, "model")
        for _ in 0..<32 {
            guard let n = model else { break }
            if type(n).hasPrefix("ModelSampling") { p.shift = widgets(n).first?.double }
            if type(n).contains("Lora"), let file = widgets(n).first?.string {
                p.loras.insert(.init(name: ComfyUIPromptReader.loraName(file), strength: widgets(n).dropFirst().first?.double ?? 1), at: 0)
            }
            // Loaders whose first widget is the file: CheckpointLoaderSimple, unCLIPCheckpointLoader, UNETLoader, …
            // (CheckpointLoader's first is its config).
            if type(n).contains("CheckpointLoader") || type(n) == "UNETLoader" {
                p.model = (type(n) == "CheckpointLoader" ? widgets(n).dropFirst().first : widgets(n).first)?.string
                break
            }
            model = source(n, "model")
        }
        p.warnings.append("read from the UI workflow (no API prompt chunk): widget positions can differ between ComfyUI versions")
        return p
    }
}
