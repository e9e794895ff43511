import Foundation
import ImageIO
import ImageMetadata
import Testing
@testable import SD3

@Suite struct InferenceEngineTests {
    static let model = TransformerTests.fixtures + "/tiny-sd3"

    static func parameters(seed: UInt64 = 1) -> GenerationParameters {
        var p = GenerationParameters(prompt: "a red circle")
        (p.width, p.height, p.steps, p.seed) = (16, 16, 3, seed)
        return p
    }

    @Test func streamsEventsAndCachesThePrompt() async throws {
        let engine = InferenceEngine()
        var events: [String] = []
        var first: RGBImage?
        for try await event in await engine.generate(Self.parameters(), model: Self.model, options: LoadOptions()) {
            switch event {
            case .loading: events.append("loading")
            case .loaded: events.append("loaded")
            case .encodingPrompt: events.append("encoding")
            case let .encodedPrompt(_, cached, _): events.append(cached ? "cached" : "encoded")
            case let .step(index, total, _, _, preview):
                events.append("step \(index + 1)/\(total)")
                #expect(preview?.width == 8 && preview?.height == 8)  // latent resolution: the tiny VAE halves
            case .decoding: events.append("decoding")
            case let .finished(image, metadata, _):
                events.append("finished")
                first = image
                #expect(metadata.seed == 1 && metadata.steps == 3)
            }
        }
        #expect(events == ["loading", "loaded", "encoding", "encoded", "step 1/3", "step 2/3", "step 3/3", "decoding", "finished"])
        // Same prompt, another seed: the model stays loaded and the text encoders do not run.
        var second: [String] = []
        for try await event in await engine.generate(Self.parameters(seed: 2), model: Self.model, options: LoadOptions()) {
            if case let .encodedPrompt(_, cached, _) = event { second.append(cached ? "cached" : "encoded") }
            if case .loading = event { second.append("loading") }
            if case let .finished(image, _, _) = event { #expect(image != first, "another seed gave the same image") }
        }
        #expect(second == ["cached"])
    }

    /// With a TAESD3 the step previews are its decode of x0 (half the image's side), the same as the pipeline's own
    /// preview of that step, and a `decoder: .taesd` request finishes with it, as the pipeline's `generate` does.
    @Test func previewsAndDraftsUseTheTAESD() async throws {
        var options = LoadOptions()
        options.taesd = PreviewTests.smallTAESD
        var p = Self.parameters()
        p.decoder = .taesd
        var previews: [RGBImage] = []
        var finished: RGBImage?
        for try await event in await InferenceEngine().generate(p, model: Self.model, options: options) {
            if case let .step(_, _, _, _, preview?) = event { previews.append(preview) }
            if case let .finished(image, metadata, _) = event { (finished, _) = (image, #expect(metadata.decoder == "taesd")) }
        }
        let pipeline = try StableDiffusion3Pipeline(path: Self.model, options: InferenceEngine.runTime(options))
        var expected: [RGBImage] = []
        let image = try pipeline.generate(p, onStep: { expected.append(try pipeline.preview($0)) })
        #expect(previews.count == 3 && previews.allSatisfy { $0.width == 8 && $0.height == 8 })
        #expect(previews == expected)
        #expect(finished == image)
    }

    /// The studio's TAESD3 is optional: one that does not fit the model (taesd3 upsamples ×8, the tiny VAE ×2) is left
    /// out with its reason, previews use the projection and a taesd draft is decoded by the VAE, recorded as such.
    @Test func anUnfitTAESDIsLeftOutInTheStudio() async throws {
        var options = LoadOptions()
        (options.taesd, options.taesdOptional) = (AutoencoderTinyTests.fixtures + "/taesd3", true)
        let pipeline = try StableDiffusion3Pipeline(path: Self.model, options: options)
        #expect(pipeline.taesd == nil && pipeline.taesdProblem?.contains("×8") == true, "\(pipeline.taesdProblem ?? "")")
        var p = Self.parameters()
        p.decoder = .taesd
        var previews: [RGBImage] = []
        var metadata: ImageMetadata?
        for try await event in await InferenceEngine().generate(p, model: Self.model, options: options) {
            if case let .step(_, _, _, _, preview?) = event { previews.append(preview) }
            if case let .finished(_, recorded, _) = event { metadata = recorded }
        }
        #expect(previews.count == 3 && previews.allSatisfy { $0.width == 8 && $0.height == 8 })
        #expect(metadata != nil && metadata?.decoder == nil)
        options.taesdOptional = false
        #expect(throws: ModelError.self) { try StableDiffusion3Pipeline(path: Self.model, options: options) }
    }

    /// Seed exploration starts the next draft as soon as `finished` arrives, before the stream ends: the model
    /// must already be remembered as loaded and the prompt as encoded.
    @Test func aRequestStartedOnFinishedFindsTheModelAndPromptCached() async throws {
        let engine = InferenceEngine()
        var second: [String] = []
        for try await event in await engine.generate(Self.parameters(), model: Self.model, options: LoadOptions()) {
            guard case .finished = event else { continue }
            for try await next in await engine.generate(Self.parameters(seed: 2), model: Self.model, options: LoadOptions()) {
                if case .loading = next { second.append("loading") }
                if case let .encodedPrompt(_, cached, _) = next { second.append(cached ? "cached" : "encoded") }
                if case .finished = next { second.append("finished") }
            }
        }
        #expect(second == ["cached", "finished"])
    }

    /// The T5 choice reloads the text encoders and encodes the prompt again (embeddings of another T5 are not
    /// reused), and int8 weights are recorded in the metadata.
    @Test func changingT5EncodesAgainAndInt8IsRecorded() async throws {
        let engine = InferenceEngine()
        var seen: [String] = []
        for (useT5, int8) in [(true, false), (true, true), (false, false), (false, false)] {
            var options = LoadOptions()
            options.t5 = useT5 ? (int8 ? .int8 : .on) : .off
            for try await event in await engine.generate(Self.parameters(), model: Self.model, options: options) {
                if case let .encodedPrompt(_, cached, _) = event { seen.append(cached ? "cached" : "encoded") }
                if case let .finished(_, metadata, _) = event { seen.append("T5 \(metadata.t5) \(metadata.t5Weights ?? "-")") }
            }
        }
        #expect(seen == ["encoded", "T5 true -", "encoded", "T5 true int8", "encoded", "T5 false -", "cached", "T5 false -"])
    }

    @Test func cancellingTheConsumerStopsTheWork() async throws {
        let engine = InferenceEngine()
        var p = Self.parameters()
        p.steps = 200
        let task = Task {
            var steps = 0
            for try await event in await engine.generate(p, model: Self.model, options: LoadOptions()) {
                if case .step = event { steps += 1 }
                if steps == 2 { break }
            }
            return steps
        }
        #expect(try await task.value == 2)
        // The engine stops within a block of the consumer leaving: at most the step running when the stream ended is
        // finished after it (the engine does not wait for its consumer, so on a loaded machine it may be far ahead of
        // the two steps seen; without the cancel flag all 200 would run).
        await engine.waitUntilIdle()
        let ran = await engine.lastRunSteps
        let atCancel = try #require(await engine.lastRunStepsAtCancel)
        #expect(ran >= 2 && ran <= atCancel + 1, "\(ran) steps ran, \(atCancel) when the consumer left")
        // The engine is free again and finishes a normal run afterwards.
        var finished = false
        for try await event in await engine.generate(Self.parameters(), model: Self.model, options: LoadOptions()) {
            if case .finished = event { finished = true }
        }
        #expect(finished)
    }

    @Test func errorsArriveThroughTheStream() async {
        let engine = InferenceEngine()
        var p = Self.parameters()
        p.width = 15
        await #expect(throws: GenerationError.badSize(width: 15, height: 16, multiple: 4)) {
            for try await _ in await engine.generate(p, model: Self.model, options: LoadOptions()) {}
        }
        await #expect(throws: ModelSourceError.notFound("/nonexistent")) {
            for try await _ in await engine.generate(p, model: "/nonexistent", options: LoadOptions()) {}
        }
    }
}
