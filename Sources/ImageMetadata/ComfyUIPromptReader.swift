/// ComfyUI's `prompt` chunk (nodes.py `SaveImage`): the API graph, `{"id": {"class_type": …, "inputs": {name: value
/// or [source id, output index]}}}`. The parameters live on a sampler node; the prompts, size, model, LoRAs and shift
/// are found by walking back along its inputs.
enum ComfyUIPromptReader {
    typealias Node = (id: String, type: String, inputs: JSONValue)

    static func parse(_ text: String, name: String) throws(MetadataError) -> RecalledParameters {
        guard let pairs = JSONValue.parse(text)?.object else { throw MetadataError("\(name): its ComfyUI prompt chunk is not a JSON object") }
        let graph = Graph(nodes: pairs.compactMap { id, node in
            guard let type = node["class_type"]?.string else { return nil }
            return (id, type, node["inputs"] ?? .object([]))
        })
        let samplers = graph.nodes.filter { isSampler($0.type) }
        // The first pass: a sampler whose latent comes from no other sampler (a second pass refines the first). Each
        // check walks the graph once, so only the first 64 samplers are checked (real graphs have a handful).
        guard let sampler = samplers.prefix(64).first(where: { !graph.reaches(from: $0, input: "latent_image", where: { isSampler($0.type) }) }) ?? samplers.first else {
            throw MetadataError("\(name): its ComfyUI prompt has no sampler node (KSampler, SamplerCustom, …)")
        }
        var p = RecalledParameters(source: .comfyUI, prompt: "")
        var positiveNodes = Set<String>(), negativeNodes = Set<String>()
        let guider = graph.node(sampler.inputs["guider"])
        let conditioning = guider ?? sampler
        let positive = graph.prompts(conditioning.inputs["positive"] ?? conditioning.inputs["conditioning"], visited: &positiveNodes)
        let negative = graph.prompts(conditioning.inputs["negative"], visited: &negativeNodes)
        let reached = positiveNodes.union(negativeNodes)
        p.prompt = positive.joined(separator: "\n")
        p.negativePrompt = conditioning.inputs["negative"] == nil ? nil : negative.joined(separator: "\n")
        if positive.count > 1 { p.warnings.append("the prompt joins \(positive.count) prompts (ConditioningCombine/Concat) of this graph, one per line") }
        if negative.count > 1 { p.warnings.append("the negative prompt joins \(negative.count) prompts of this graph, one per line") }

        let i = sampler.inputs
        let noise = graph.node(i["noise"])?.inputs
        p.seed = (i["seed"] ?? i["noise_seed"] ?? noise?["noise_seed"]).flatMap { graph.value($0)?.seed }
        let sigmas = graph.node(i["sigmas"])?.inputs
        p.steps = (i["steps"] ?? sigmas?["steps"]).flatMap { graph.value($0)?.int }
        p.guidanceScale = (i["cfg"] ?? guider?.inputs["cfg"]).flatMap { graph.value($0)?.double }
        p.sampler = i["sampler_name"].flatMap { graph.value($0)?.string } ?? graph.node(i["sampler"])?.inputs["sampler_name"]?.string
        p.scheduler = (i["scheduler"] ?? sigmas?["scheduler"]).flatMap { graph.value($0)?.string }
        if let denoise = (i["denoise"] ?? sigmas?["denoise"]).flatMap({ graph.value($0)?.double }), denoise < 1 { p.strength = denoise }

        var latent = graph.node(i["latent_image"])
        for _ in 0..<16 {
            guard let n = latent else { break }
            if let w = n.inputs["width"].flatMap({ graph.value($0)?.int }), let h = n.inputs["height"].flatMap({ graph.value($0)?.int }) {
                (p.width, p.height) = (w, h)
                break
            }
            latent = graph.node(n.inputs["samples"] ?? n.inputs["latent"] ?? n.inputs["latent_image"])
        }

        // The model chain: ModelSamplingSD3 (shift), LoRA loaders, … down to the loader that names the file.
        var model = graph.node((guider ?? sampler).inputs["model"])
        var loras: [RecalledParameters.Lora] = []
        for _ in 0..<32 {
            guard let n = model else { break }
            if n.type.hasPrefix("ModelSampling"), let shift = n.inputs["shift"].flatMap({ graph.value($0)?.double }) { p.shift = shift }
            if let lora = n.inputs["lora_name"].flatMap({ graph.value($0)?.string }) {
                let strength = (n.inputs["strength_model"] ?? n.inputs["strength"]).flatMap { graph.value($0)?.double } ?? 1
                loras.append(.init(name: loraName(lora), strength: strength))
            }
            if let file = ["ckpt_name", "unet_name", "model_path"].lazy.compactMap({ n.inputs[$0].flatMap { graph.value($0)?.string } }).first {
                p.model = file
                break
            }
            model = graph.node(n.inputs["model"])
        }
        // Nearest the sampler first; the file's order is loader first.
        p.loras = loras.reversed()
        p.extra.append(.init("Sampler node", "\(sampler.type) #\(sampler.id)"))
        if samplers.count > 1 {
            let others = samplers.filter { $0.id != sampler.id }.map { "\($0.type) #\($0.id)" }
            p.warnings.append("\(others.count) other sampler(s) in this graph, not recalled: \(others.joined(separator: ", "))")
        }
        let encoders = graph.nodes.filter { graph.encodedText($0) != nil && !reached.contains($0.id) }
        if !encoders.isEmpty { p.warnings.append("\(encoders.count) other prompt(s) in this graph, not recalled") }
        return p
    }

    /// KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced; not KSamplerSelect, which only names a method.
    static func isSampler(_ type: String) -> Bool { (type.hasPrefix("KSampler") || type.hasPrefix("SamplerCustom")) && !type.hasSuffix("Select") }

    /// `sd3/a.safetensors` → `a`, as A1111 names a LoRA by its file.
    static func loraName(_ file: String) -> String {
        let base = file.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? file
        for ext in [".safetensors", ".ckpt", ".pt", ".bin"] where base.hasSuffix(ext) { return String(base.dropLast(ext.count)) }
        return base
    }

    struct Graph {
        let nodes: [Node]
        let byID: [String: Node]

        init(nodes: [Node]) {
            // ids sorted numerically, so a graph reads the same every time.
            self.nodes = nodes.sorted { (Int($0.id) ?? .max, $0.id) < (Int($1.id) ?? .max, $1.id) }
            var byID: [String: Node] = [:]
            for n in nodes where byID[n.id] == nil { byID[n.id] = n }
            self.byID = byID
        }

        /// The node a link `[id, slot]` points at.
        func node(_ link: JSONValue?) -> Node? {
            guard let items = link?.array, items.count == 2, let first = items.first else { return nil }
            let id = first.string ?? first.text
            return byID[id]
        }

        /// A literal input, or the value of the primitive node a link points at (PrimitiveNode, String/Int nodes).
        func value(_ input: JSONValue) -> JSONValue? {
            guard let n = node(input) else { return input.array == nil ? input : nil }
            for key in ["value", "text", "string", "int", "float", "seed", "noise_seed"] {
                if let v = n.inputs[key], v.array == nil { return v }
            }
            return nil
        }

        /// A text encoder's text: the first non-empty of its text inputs (SD3's encoder has one per text encoder).
        func encodedText(_ n: Node) -> String? {
            guard n.type.contains("TextEncode") else { return nil }
            var found: String?
            for key in ["text", "t5xxl", "clip_g", "clip_l", "text_g", "text_l", "prompt"] {
                guard let v = n.inputs[key], let s = value(v)?.string else { continue }
                if found == nil || found!.isEmpty { found = s }
            }
            return found
        }

        /// The prompts a conditioning comes from, in input order, through combine, concat, area, control-net and
        /// other conditioning nodes; each node once (`visited`), so a graph that joins one branch many times costs
        /// its size, not its number of paths.
        func prompts(_ link: JSONValue?, visited: inout Set<String>, depth: Int = 0) -> [String] {
            guard depth < 64, let n = node(link), visited.insert(n.id).inserted else { return [] }
            if n.type == "ConditioningZeroOut" { return [""] }
            if let text = encodedText(n) { return [text.trimmingSpaces] }
            // A node with both a positive and a negative input (ControlNetApplyAdvanced) passes each to its output slot.
            if n.inputs["positive"] != nil, n.inputs["negative"] != nil, let slot = link?.array?.last?.int {
                return prompts(n.inputs[slot == 1 ? "negative" : "positive"], visited: &visited, depth: depth + 1)
            }
            var out: [String] = []
            for key in ["conditioning", "conditioning_1", "conditioning_2", "conditioning_to", "conditioning_from", "positive", "cond"] {
                out += prompts(n.inputs[key], visited: &visited, depth: depth + 1)
            }
            return out
        }

        /// Whether following `input` links back from `start` reaches a node that `match` accepts.
        func reaches(from start: Node, input: String, where match: (Node) -> Bool) -> Bool {
            var frontier = [node(start.inputs[input])].compactMap { $0 }
            var visited = Set<String>()
            while let n = frontier.popLast() {
                guard visited.insert(n.id).inserted, visited.count < 10_000 else { continue }
                if match(n) { return true }
                for (_, v) in n.inputs.object ?? [] { if let next = node(v) { frontier.append(next) } }
            }
            return false
        }
    }
}
