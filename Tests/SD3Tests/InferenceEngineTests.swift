import Foundation
import ImageIO
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
                #expect(preview.width == 8 && preview.height == 8)  // latent resolution: the tiny VAE halves
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
