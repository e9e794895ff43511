import Foundation

/// ComfyUI's HTTP API (server.py of ComfyUI 0.3.75): each call one request, its errors one line naming the server.
public struct ComfyUIServer: Sendable {
    public let address: ServerAddress
    public var timeouts: Timeouts

    public init(_ address: ServerAddress, timeouts: Timeouts = Timeouts()) {
        self.address = address
        self.timeouts = timeouts
    }

    /// What `/system_stats` says of the machine.
    public struct SystemStats: Sendable, Equatable {
        public var comfyUIVersion: String?
        /// "cuda:0 NVIDIA …" or "cpu", with VRAM in bytes.
        public var devices: [(name: String, vramTotal: Int, vramFree: Int)]
        public static func == (a: SystemStats, b: SystemStats) -> Bool {
            a.comfyUIVersion == b.comfyUIVersion && a.devices.map(\.name) == b.devices.map(\.name)
                && a.devices.map(\.vramTotal) == b.devices.map(\.vramTotal) && a.devices.map(\.vramFree) == b.devices.map(\.vramFree)
        }

        /// "NVIDIA GeForce RTX 4090 (22.1 of 24.0 GB free)" or "cpu".
        public var summary: String {
            guard let device = devices.first else { return "no device listed" }
            let name = device.name.replacingOccurrences(of: #"^cuda:\d+ "#, with: "", options: .regularExpression)
                .replacingOccurrences(of: " : cudaMallocAsync", with: "")
            guard device.vramTotal > 0, !name.hasPrefix("cpu") else { return name }
            return String(format: "%@ (%.1f of %.1f GB free)", name, Double(device.vramFree) / 1e9, Double(device.vramTotal) / 1e9)
        }
    }

    /// The files the server can load, per folder, as its loader nodes list them in `/object_info/NODE`.
    public struct Files: Sendable, Equatable {
        public var checkpoints: [String] = []
        public var diffusionModels: [String] = []
        public var textEncoders: [String] = []
        public var vaes: [String] = []
        public var loras: [String] = []
        public init() {}
    }

    func request(_ method: String, _ path: String, json: JSON? = nil, body: [UInt8]? = nil, contentType: String? = nil) throws(RemoteError) -> HTTPResponse {
        var headers: [(String, String)] = []
        if json != nil { headers.append(("Content-Type", "application/json")) }
        if let contentType { headers.append(("Content-Type", contentType)) }
        return try HTTPClient.send(method, path, to: address, timeouts: timeouts, headers: headers, body: json?.bytes ?? body)
    }

    /// A 200 answer parsed as JSON, else an error with the status and the start of what the server said.
    func getJSON(_ path: String) throws(RemoteError) -> Received {
        let answer = try request("GET", path)
        guard answer.status == 200 else { throw statusError(answer, doing: "GET \(path)") }
        let value = Received(parsing: answer.body)
        guard !value.isNull else { throw RemoteError("\(address.name): GET \(path) did not answer JSON (is this a ComfyUI server?)") }
        return value
    }

    func statusError(_ answer: HTTPResponse, doing: String) -> RemoteError {
        let said = answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
        var hint = ""
        if answer.status == 401 || answer.status == 403 { hint = " (the server or its proxy wants a token: set the backend's token or header in the config)" }
        if answer.status == 404 { hint = " (is this a ComfyUI server?)" }
        return RemoteError("\(address.name): \(doing) answered HTTP \(answer.status)\(hint)\(said.isEmpty ? "" : ": \(said.oneLineShown)")")
    }

    public func systemStats() throws(RemoteError) -> SystemStats {
        let value = try getJSON("/system_stats")
        let devices = (value["devices"].array ?? []).map { device in
            (name: device["name"].string ?? device["type"].string ?? "?", vramTotal: device["vram_total"].int ?? 0, vramFree: device["vram_free"].int ?? 0)
        }
        return SystemStats(comfyUIVersion: value["system"]["comfyui_version"].string, devices: devices)
    }

    /// Running and waiting prompts (`GET /queue`).
    public func queueLength() throws(RemoteError) -> Int {
        let value = try getJSON("/queue")
        return (value["queue_running"].array?.count ?? 0) + (value["queue_pending"].array?.count ?? 0)
    }

    public func files() throws(RemoteError) -> Files {
        var files = Files()
        files.checkpoints = try choices(node: "CheckpointLoaderSimple", input: "ckpt_name")
        files.diffusionModels = try choices(node: "UNETLoader", input: "unet_name")
        files.textEncoders = try choices(node: "CLIPLoader", input: "clip_name")
        files.vaes = try choices(node: "VAELoader", input: "vae_name")
        files.loras = try choices(node: "LoraLoaderModelOnly", input: "lora_name")
        return files
    }

    /// A combo input's choices: `[[names…], {…}]` (nodes.py's classic form) or `["COMBO", {"options": [names…]}]`.
    func choices(node: String, input: String) throws(RemoteError) -> [String] {
        let value = try getJSON("/object_info/\(node)")
        let spec = value[node]["input"]["required"][input]
        if let names = spec[0].array { return names.compactMap(\.string) }
        if let names = spec[1]["options"].array { return names.compactMap(\.string) }
        if value[node].isNull { throw RemoteError("\(address.name) has no \(node) node (is this ComfyUI?)") }
        throw RemoteError("\(address.name): \(node)'s \(input) is not a list of files in /object_info")
    }

    /// `POST /prompt`; a refused workflow becomes one line naming the nodes and inputs ComfyUI complained about.
    public func submit(_ workflow: ComfyUIWorkflow, clientID: String, promptID: String) throws(RemoteError) {
        let body = JSON.object([("prompt", workflow.json), ("client_id", .string(clientID)), ("prompt_id", .string(promptID))])
        let answer = try request("POST", "/prompt", json: body)
        if answer.status == 200 { return }
        let value = Received(parsing: answer.body)
        guard answer.status == 400, !value["error"].isNull else { throw statusError(answer, doing: "POST /prompt") }
        throw RemoteError("\(address.name) refused the workflow: \(Self.describeRefusal(value, workflow: workflow))")
    }

    /// `{"error": {"message", "details"}, "node_errors": {"ID": {"class_type", "errors": [{"message", "details",
    /// "extra_info": {"input_name", "received_value"}}]}}}` as "NODE.input: message (details)" items.
    static func describeRefusal(_ value: Received, workflow: ComfyUIWorkflow) -> String {
        var items: [String] = []
        for (id, node) in (value["node_errors"].object ?? [:]).sorted(by: { $0.key < $1.key }) {
            let classType = node["class_type"].string ?? workflow.classType(of: id) ?? "node \(id)"
            for error in node["errors"].array ?? [] {
                let name = error["extra_info"]["input_name"].string
                let input = name.map { ".\($0)" } ?? ""
                // ComfyUI's details often repeat the input's name.
                let details = error["details"].string.flatMap { $0.isEmpty || $0 == name ? nil : " (\($0))" } ?? ""
                items.append("\(classType)\(input): \(error["message"].string ?? "error")\(details)")
            }
        }
        if items.isEmpty {
            let message = value["error"]["message"].string ?? value["error"].string ?? "invalid prompt"
            let details = value["error"]["details"].string.flatMap { $0.isEmpty ? nil : ": \($0)" } ?? ""
            items.append(message + details)
        }
        return items.joined(separator: "; ").oneLineShown(limit: 400)
    }

    /// `POST /interrupt {"prompt_id"}`: stops that prompt only if it is the one running (ComfyUI ≥ 0.3.4x).
    public func interrupt(promptID: String) throws(RemoteError) {
        let answer = try request("POST", "/interrupt", json: .object([("prompt_id", .string(promptID))]))
        guard answer.status == 200 else { throw statusError(answer, doing: "POST /interrupt") }
    }

    /// Takes a waiting prompt off the queue (`POST /queue {"delete": [id]}`).
    public func dequeue(promptID: String) throws(RemoteError) {
        let answer = try request("POST", "/queue", json: .object([("delete", .array([.string(promptID)]))]))
        guard answer.status == 200 else { throw statusError(answer, doing: "POST /queue") }
    }

    /// What `/history/ID` says of a prompt: nil while it has not finished.
    public enum Outcome: Sendable, Equatable {
        case images([ImageReference])
        case failed(String)
    }

    public struct ImageReference: Sendable, Equatable {
        public var filename: String
        public var subfolder: String
        public var type: String
    }

    public func history(promptID: String, outputNode: String) throws(RemoteError) -> Outcome? {
        let value = try getJSON("/history/\(promptID)")
        let entry = value[promptID]
        if entry.isNull { return nil }
        let status = entry["status"]
        if status["status_str"].string == "error" {
            let messages = (status["messages"].array ?? []).compactMap { message -> String? in
                guard message[0].string == "execution_error" else { return nil }
                return Self.describeExecutionError(message[1])
            }
            return .failed(messages.first ?? "the job failed")
        }
        guard status["completed"].value as? Bool ?? (status["status_str"].string == "success") else { return nil }
        let images = (entry["outputs"][outputNode]["images"].array ?? []).compactMap { image -> ImageReference? in
            guard let name = image["filename"].string else { return nil }
            return ImageReference(filename: name, subfolder: image["subfolder"].string ?? "", type: image["type"].string ?? "output")
        }
        return .images(images)
    }

    /// `GET /view?filename&subfolder&type`: the image's bytes.
    public func view(_ image: ImageReference) throws(RemoteError) -> [UInt8] {
        let query = [("filename", image.filename), ("subfolder", image.subfolder), ("type", image.type)]
            .map { "\($0.0)=\(Self.percentEncoded($0.1))" }.joined(separator: "&")
        let answer = try request("GET", "/view?\(query)")
        guard answer.status == 200 else { throw statusError(answer, doing: "GET /view of \(image.filename)") }
        return answer.body
    }

    /// `POST /upload/image` (multipart, field "image", overwrite true): the name the server keeps it under.
    public func upload(png: [UInt8], name: String) throws(RemoteError) -> String {
        let boundary = "sd3studio" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        var body: [UInt8] = []
        func text(_ s: String) { body += Array(s.utf8) }
        text("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\(name)\"\r\nContent-Type: image/png\r\n\r\n")
        body += png
        text("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n--\(boundary)--\r\n")
        let answer = try request("POST", "/upload/image", body: body, contentType: "multipart/form-data; boundary=\(boundary)")
        guard answer.status == 200 else { throw statusError(answer, doing: "POST /upload/image") }
        let value = Received(parsing: answer.body)
        guard let stored = value["name"].string else { throw RemoteError("\(address.name): /upload/image answered without a name") }
        let subfolder = value["subfolder"].string ?? ""
        return subfolder.isEmpty ? stored : "\(subfolder)/\(stored)"
    }

    /// `execution_error` data: "NODE_TYPE (node ID): ExceptionType: message".
    static func describeExecutionError(_ data: Received) -> String {
        let node = data["node_type"].string.map { "\($0) (node \(data["node_id"].string ?? "?")): " } ?? ""
        let type = data["exception_type"].string.map { "\($0): " } ?? ""
        return (node + type + (data["exception_message"].string ?? "failed")).trimmingCharacters(in: .whitespacesAndNewlines).oneLineShown(limit: 400)
    }

    static func percentEncoded(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
