import Foundation
import ImageIO
import SD3

/// Turns the socket's messages about one prompt into our events (ComfyUI 0.3.75 server.py / execution.py):
/// - `executing {node, prompt_id}`: which node runs; binary frames that follow belong to it.
/// - `progress {value, max, prompt_id, node}` of the sampler: step `value` of `max`, sent before that step's preview.
/// - binary event 1 (`uint32 BE` event, `uint32 BE` format 1 JPEG / 2 PNG, image bytes): a JPEG while the sampler runs is
///   a step preview; the PNG while SaveImageWebsocket runs is the image. Event 4 (`uint32` length, JSON metadata with
///   `prompt_id`, then the image) is the same preview for clients that asked for metadata.
/// - `execution_success`, `execution_error`, `execution_interrupted`: the end.
/// A step is held until the next message, so its preview (if one follows) goes out with it.
struct ProgressTracker {
    let job: ComfyUIJob
    let workflow: ComfyUIWorkflow
    let started: Date
    private(set) var image: RGBImage?
    private(set) var succeeded = false
    private var running: String?
    private var pending: (index: Int, total: Int)?
    private var lastSent: (index: Int, total: Int)?
    private var lastStep = -1
    private var sigmas: [Float] = []
    private var sawSampler = false
    private var denoiseStart: Date?

    init(job: ComfyUIJob, workflow: ComfyUIWorkflow, started: Date) {
        (self.job, self.workflow, self.started) = (job, workflow, started)
    }

    mutating func take(_ message: WebSocket.Message, promptID: String, server: String) throws -> [GenerationEvent] {
        switch message {
        case let .binary(bytes): return try binary(bytes, promptID: promptID, server: server)
        case let .text(text): return try self.text(text, promptID: promptID, server: server)
        }
    }

    /// The held step, without a preview (the socket dropped, or the next message was not one).
    mutating func flush() -> [GenerationEvent] {
        guard let step = pending else { return [] }
        pending = nil
        return [stepEvent(step, preview: nil)]
    }

    private mutating func text(_ text: String, promptID: String, server: String) throws -> [GenerationEvent] {
        let message = Received(parsing: Array(text.utf8))
        let data = message["data"]
        // Other prompts' messages, `status` and `progress_state` (sent between a step's progress and its preview) pass.
        guard let type = message["type"].string, data["prompt_id"].string == promptID, Self.followed.contains(type) else { return [] }
        var events = flush()
        switch type {
        case "executing":
            running = data["node"].string
            lastSent = nil
            // Servers before execution_success existed end a prompt with `executing {node: null}`.
            if data["node"].isNull { succeeded = true }
            guard let node = running, let classType = workflow.classType(of: node) else { break }
            if classType == "CLIPTextEncode" && !sawSampler && events.isEmpty {
                events.append(.encodingPrompt)
            } else if classType.hasPrefix("KSampler") {
                sawSampler = true
                denoiseStart = Date()
                events.append(.encodedPrompt(seconds: Date().timeIntervalSince(started), cached: false, warnings: []))
            } else if classType == "VAEDecode" {
                events.append(.decoding)
            }
        case "progress":
            guard data["node"].string == workflow.samplerID || data["node"].isNull,
                  let value = data["value"].int, let total = data["max"].int, total > 0, (1...total).contains(value) else { break }
            if value - 1 > lastStep {
                lastStep = value - 1
                pending = (value - 1, total)
            }
        case "execution_success":
            succeeded = true
        case "execution_error":
            throw RemoteError("\(server): \(ComfyUIServer.describeExecutionError(data))")
        case "execution_interrupted":
            throw RemoteError("\(server): the job was interrupted on the server (by another client or its UI)")
        default:
            break
        }
        return events
    }

    private mutating func binary(_ bytes: [UInt8], promptID: String, server: String) throws -> [GenerationEvent] {
        guard bytes.count >= 8 else { return [] }
        let event = Self.uint32(bytes, 0)
        var format = Self.uint32(bytes, 4)
        var payload = Array(bytes[8...])
        if event == 4 {
            // uint32 length, that many bytes of JSON metadata, then the image; the format is in the metadata's mime type.
            let length = Int(format)
            guard length <= payload.count else { return [] }
            let metadata = Received(parsing: Array(payload[0..<length]))
            guard metadata["prompt_id"].string == promptID else { return [] }
            format = metadata["image_type"].string == "image/png" ? 2 : 1
            payload = Array(payload[length...])
        } else if event != 1 {
            return []
        }
        if format == 2 && running == workflow.socketOutput {
            image = try PNGFile.decode(payload, name: "\(server)'s image").image
            return flush()
        }
        let preview: RGBImage? = format == 1 ? try? JPEGFile.decode(payload, name: "preview", partial: true) : try? PNGFile.decode(payload, name: "preview").image
        // A preview after its step went out (a message came between) repeats that step with the picture.
        guard let step = pending ?? lastSent, let preview else { return [] }
        pending = nil
        return [stepEvent(step, preview: preview)]
    }

    static let followed: Set<String> = ["executing", "progress", "execution_success", "execution_error", "execution_interrupted"]

    private mutating func stepEvent(_ step: (index: Int, total: Int), preview: RGBImage?) -> GenerationEvent {
        lastSent = step
        if sigmas.count != step.total + 1 { sigmas = Self.sigmas(steps: step.total, shift: job.parameters.shift ?? ComfyUIJob.defaultShift) }
        let elapsed = Date().timeIntervalSince(denoiseStart ?? started)
        return .step(index: step.index, total: step.total, sigma: sigmas.indices.contains(step.index) ? sigmas[step.index] : .nan,
                     elapsed: elapsed, preview: preview)
    }

    /// ComfyUI's `normal` schedule with ModelSamplingSD3 is diffusers' static-shift FlowMatchEuler schedule.
    static func sigmas(steps: Int, shift: Double) -> [Float] {
        guard var scheduler = try? FlowMatchEulerDiscreteScheduler(config: .init(shift: shift)), (try? scheduler.setTimesteps(steps)) != nil else { return [] }
        return scheduler.sigmas
    }

    static func uint32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
