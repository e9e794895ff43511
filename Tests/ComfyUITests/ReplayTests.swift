@testable import ComfyUI
import Foundation
import ImageIO
import PollSupport
import SD3
import Testing

/// Our client against traffic recorded from a real ComfyUI 0.3.75 (scripts/comfyui/record_all.sh with
/// sd3_scenario.sh: `sd3 generate --backend` through record_proxy.py). The jobs here are the scenarios' flags as
/// `ComfyUIJob`s: the workflow we build now must be the one the real server ran.
@Suite(.timeLimit(.minutes(10))) struct ReplayTests {
    static func unet(_ job: ComfyUIJob) -> ComfyUIJob {
        var job = job
        (job.model, job.clipL, job.clipG, job.vae) = ("tiny-sd3.safetensors", "clip_l.safetensors", "clip_g.safetensors", "sd3_vae.safetensors")
        return job
    }

    static func parameters(_ prompt: String, seed: UInt64, steps: Int, guidance: Double) -> GenerationParameters {
        var p = GenerationParameters(prompt: prompt)
        (p.width, p.height, p.seed, p.steps, p.guidanceScale) = (64, 64, seed, steps, guidance)
        return p
    }

    static let scenarios: [String: ComfyUIJob] = {
        var jobs: [String: ComfyUIJob] = [:]
        jobs["txt2img"] = unet(ComfyUIJob(parameters: parameters("a red square on a blue background", seed: 42, steps: 4, guidance: 5), model: ""))
        var lora = ComfyUIJob(parameters: parameters("a green circle", seed: 7, steps: 3, guidance: 4), model: "tiny-sd3-all.safetensors")
        lora.parameters.negativePrompt = "blurry"
        lora.parameters.shift = 3
        lora.loras = [.init(name: "tiny-lora.safetensors", strength: 0.8)]
        jobs["checkpoint-lora"] = lora
        var img2img = unet(ComfyUIJob(parameters: parameters("a yellow triangle", seed: 3, steps: 4, guidance: 5), model: ""))
        img2img.parameters.initImage = try? PNGFile.read(Bundle.module.path(forResource: "Fixtures/init", ofType: "png")!).image
        img2img.parameters.strength = 0.5
        jobs["img2img"] = img2img
        jobs["reconnect"] = unet(ComfyUIJob(parameters: parameters("a dropped link", seed: 11, steps: 12, guidance: 5), model: ""))
        jobs["interrupt"] = unet(ComfyUIJob(parameters: parameters("a slow one", seed: 5, steps: 40, guidance: 5), model: ""))
        var refused = unet(ComfyUIJob(parameters: parameters("x", seed: 1, steps: 2, guidance: 7), model: ""))
        refused.parameters.shift = 500
        jobs["refused"] = refused
        var tall = unet(ComfyUIJob(parameters: parameters("too tall", seed: 1, steps: 2, guidance: 7), model: ""))
        tall.parameters.height = 1088
        jobs["execution-error"] = tall
        jobs["missing-model"] = ComfyUIJob(parameters: parameters("x", seed: 1, steps: 2, guidance: 7), model: "sd3.5_large.safetensors")
        return jobs
    }()

    struct Run {
        var events: [GenerationEvent] = []
        var error: Error?
        var server: ReplayServer
    }

    /// Replays `name`, consuming the events (cancelling after `cancelAfterStep` steps when set).
    static func replay(_ name: String, cancelAfterStep: Int? = nil, headers: [(name: String, value: String)] = [],
                       recovery: Double = 60, edit: (inout Transcript) -> Void = { _ in },
                       prepare: (ReplayServer) -> Void = { _ in }) async throws -> Run {
        var transcript = try Transcript(named: name)
        edit(&transcript)
        let server = try ReplayServer(transcript)
        prepare(server)
        let ids = IDs(transcript.ids)
        var address = server.address
        address.headers = headers
        var timeouts = Timeouts()
        timeouts.recovery = recovery
        let backend = ComfyUIBackend(server: ComfyUIServer(address, timeouts: timeouts), ids: { ids.next() })
        var run = Run(server: server)
        let task = Task { () -> ([GenerationEvent], Error?) in
            var events: [GenerationEvent] = []
            do {
                for try await event in backend.generate(scenarios[name]!) {
                    events.append(event)
                    if let cancelAfterStep, case let .step(index, _, _, _, _) = event, index + 1 >= cancelAfterStep { break }
                }
                return (events, nil)
            } catch {
                return (events, error)
            }
        }
        (run.events, run.error) = await task.value
        // Leaving the loop early cancels the stream; give the backend's interrupt a moment to reach the server.
        if cancelAfterStep != nil { await Poll.until(seconds: 2, every: 0.01) { server.requests.contains { $0.path == "/interrupt" } } }
        server.stop()
        return run
    }

    final class IDs: @unchecked Sendable {
        private var list: [String]
        private let lock = NSLock()
        init(_ list: [String]) { self.list = list }
        func next() -> String { lock.withLock { list.isEmpty ? UUID().uuidString.lowercased() : list.removeFirst() } }
    }

    /// The final PNG the server sent (binary event 1, format 2), decoded.
    static func recordedImage(_ name: String) throws -> RGBImage {
        let transcript = try Transcript(named: name)
        let frames = transcript.exchanges.compactMap { exchange -> [UInt8]? in
            if case let .binary(bytes) = exchange, bytes.count > 8, ProgressTracker.uint32(bytes, 0) == 1, ProgressTracker.uint32(bytes, 4) == 2 { return Array(bytes[8...]) }
            return nil
        }
        return try PNGFile.decode(try #require(frames.last)).image
    }

    /// The body of our POST /prompt is the recorded one: the workflow the real server accepted and ran.
    static func expectRecordedWorkflow(_ run: Run, _ name: String) throws {
        let transcript = try Transcript(named: name)
        var recorded: Any?
        for case let .http("POST", "/prompt", body?, _, _, _) in transcript.exchanges { recorded = (body as? [String: Any])?["prompt"] }
        let sent = try #require(run.server.requests.first { $0.method == "POST" && $0.path == "/prompt" })
        let ours = (try JSONSerialization.jsonObject(with: Data(sent.body)) as? [String: Any])?["prompt"]
        let a = try JSONSerialization.data(withJSONObject: try #require(ours), options: [.sortedKeys])
        let b = try JSONSerialization.data(withJSONObject: try #require(recorded), options: [.sortedKeys])
        #expect(a == b, "\(name): the workflow differs from the recorded one")
    }

    @Test(arguments: ["txt2img", "checkpoint-lora", "img2img"])
    func aJobStreamsStepsPreviewsAndTheImage(_ name: String) async throws {
        let run = try await Self.replay(name)
        #expect(run.error == nil, "\(run.error.map { "\($0)" } ?? "")")
        #expect(run.server.mismatches.isEmpty, "\(run.server.mismatches)")
        try Self.expectRecordedWorkflow(run, name)
        let steps = run.events.compactMap { event -> (Int, Int, RGBImage?)? in
            if case let .step(index, total, _, _, preview) = event { return (index, total, preview) }
            return nil
        }
        let job = Self.scenarios[name]!
        let expected = job.parameters.initImage == nil ? job.parameters.steps : Int(Double(job.parameters.steps) * job.parameters.strength)
        #expect(Set(steps.map(\.0)) == Set(0..<expected) && steps.allSatisfy { $0.1 == expected }, "\(steps.map { ($0.0, $0.1) })")
        #expect(steps.contains { $0.2 != nil }, "at least one preview frame")
        guard case let .finished(image, metadata, _)? = run.events.last else { Issue.record("no finished event: \(run.events)"); return }
        #expect(image == (try Self.recordedImage(name)))
        #expect(image.width == 64 && image.height == 64)
        #expect(metadata.backend == "comfyui://127.0.0.1:\(run.server.port)" && metadata.model == job.model)
        #expect(metadata.a1111Parameters.contains("Backend: \"comfyui@127.0.0.1:\(run.server.port)\""))
    }

    /// Cancelling after the second step posts `/interrupt` with our prompt id; the stream ends as cancelled.
    @Test func cancelInterruptsThePromptOnTheServer() async throws {
        let transcript = try Transcript(named: "interrupt")
        let run = try await Self.replay("interrupt", cancelAfterStep: 2)
        let interrupt = try #require(run.server.requests.first { $0.path == "/interrupt" })
        let body = try JSONSerialization.jsonObject(with: Data(interrupt.body)) as? [String: String]
        #expect(body == ["prompt_id": transcript.ids[1]])
    }

    @Test func aRefusedWorkflowNamesTheNodeAndInput() async throws {
        let run = try await Self.replay("refused")
        #expect("\(try #require(run.error))" == "127.0.0.1:\(run.server.port) refused the workflow: ModelSamplingSD3.shift: Value 500.0 bigger than max of 100.0")
        try Self.expectRecordedWorkflow(run, "refused")
    }

    @Test func aMissingModelListsTheServersModels() async throws {
        let run = try await Self.replay("missing-model")
        #expect("\(try #require(run.error))" == "127.0.0.1:\(run.server.port) has no model 'sd3.5_large.safetensors': its checkpoints: tiny-sd3-all.safetensors; its diffusion_models: tiny-sd3-sai.safetensors, tiny-sd3.safetensors")
        #expect(!run.server.requests.contains { $0.path == "/prompt" }, "nothing was queued")
    }

    /// A server behind a proxy: the configured header goes with every request and the WebSocket's handshake.
    @Test func theBackendsHeaderGoesWithEveryRequest() async throws {
        let run = try await Self.replay("img2img", headers: [("Authorization", "Bearer hf_notReallyAToken123")])
        #expect(run.error == nil)
        #expect(run.server.requests.count >= 8)
        for request in run.server.requests { #expect(request.headers["authorization"] == "Bearer hf_notReallyAToken123", "\(request.method) \(request.path)") }
    }

    /// The link broke after the third step (record_proxy.py --drop-socket-after-progress 3): the client opens a new
    /// socket, finds the prompt still queued (/history, /queue) and reads on to the image, every step once.
    @Test func aDroppedSocketIsReopenedAndTheJobFinishes() async throws {
        let run = try await Self.replay("reconnect")
        #expect(run.error == nil, "\(run.error.map { "\($0)" } ?? "")")
        #expect(run.server.mismatches.isEmpty, "\(run.server.mismatches)")
        #expect(run.server.requests.filter { $0.path.hasPrefix("/ws") }.count == 2)
        #expect(run.server.requests.contains { $0.path.hasPrefix("/history/") })
        let steps = run.events.compactMap { event -> Int? in if case let .step(index, _, _, _, _) = event { return index } else { return nil } }
        #expect(Set(steps) == Set(0..<12), "\(steps)")
        guard case let .finished(image, _, _)? = run.events.last else { Issue.record("no image"); return }
        #expect(image == (try Self.recordedImage("reconnect")))
    }

    /// A server that restarted while the socket was down has neither history nor queue entry for the prompt: the job
    /// is `Lost` (a JobQueue runs it again), not waited on forever. The recorded /queue answer is emptied here.
    @Test func aServerThatForgotThePromptLosesTheJob() async throws {
        let run = try await Self.replay("reconnect") { transcript in
            let queue = transcript.exchanges.firstIndex { if case .http("GET", "/queue", _, _, _, _) = $0 { return true } else { return false } }!
            transcript.exchanges[queue] = .http(method: "GET", path: "/queue", requestBody: nil, status: 200, headers: ["content-type": "application/json"],
                                                body: Array(#"{"queue_running": [], "queue_pending": []}"#.utf8))
            transcript.exchanges.removeSubrange((queue + 1)...)
        }
        let error = try #require(run.error)
        #expect(error is ComfyUIBackend.Lost && "\(error)".contains("lost the job (restarted?)"), "\(error)")
    }

    /// A server that stays away after the drop: the job is `Lost` once the recovery time is over.
    @Test func aServerGoneForGoodLosesTheJobAfterTheRecoveryTime() async throws {
        let run = try await Self.replay("reconnect", recovery: 1) { transcript in
            let drop = transcript.exchanges.firstIndex { if case .socketClose = $0 { return true } else { return false } }!
            transcript.exchanges.removeSubrange((drop + 1)...)
        } prepare: { server in
            server.goesAwayWithTheSocket = true
        }
        let error = try #require(run.error)
        #expect(error is ComfyUIBackend.Lost && "\(error)".contains("went away mid-job: cannot connect to 127.0.0.1"), "\(error)")
    }

    /// A node that fails while running: one line with the node, its id and the exception, nothing else of the traceback.
    @Test func aNodeFailingWhileRunningIsOneLine() async throws {
        let run = try await Self.replay("execution-error")
        #expect("\(try #require(run.error))" == "127.0.0.1:\(run.server.port): KSampler (node 7): AssertionError: (68, 64)")
        try Self.expectRecordedWorkflow(run, "execution-error")
    }
}
