import Checksums
import Foundation
import ImageMetadata

/// The engine's side of the metadata record: filled from the parameters a pipeline ran with.
extension ImageMetadata {
    /// Records the LoRAs a generation applied (nothing when none).
    public mutating func record(loras: ActiveLoras, mode: LoraMode) {
        guard !loras.isEmpty else { return }
        self.loras = loras.list.map { LoraRecord(name: $0.file.name, strength: $0.strength, hash: $0.file.shortHash, path: $0.file.path) }
        loraMode = mode.recordedName
    }

    public init(parameters p: GenerationParameters, model: String, t5: Bool, shift: Double, precision: String, seconds: Double?) {
        self.init(prompt: p.prompt, negativePrompt: p.negativePrompt, width: p.width, height: p.height, steps: p.steps,
                  guidanceScale: p.guidanceScale, seed: p.seed, maxSequenceLength: p.maxSequenceLength, t5: t5, shift: shift,
                  precision: precision, model: URL(fileURLWithPath: model).lastPathComponent, version: "sd3-studio \(SD3.version)")
        if let v = p.variation, v.strength != 0 { (variationSeed, variationStrength) = (v.seed, v.strength) }
        modelPath = model
        strength = p.initImage == nil ? nil : p.strength
        initImageHash = p.initImage.map { SHA256.hex($0.pixels) }
        skipLayers = p.skipLayerGuidance?.layers
        skipLayerScale = p.skipLayerGuidance?.scale
        skipLayerStart = p.skipLayerGuidance?.start
        skipLayerStop = p.skipLayerGuidance?.stop
        scheduler = p.scheduler == .euler ? nil : p.scheduler.rawValue
        recipe = p.recipe
        decoder = p.decoder == .vae ? nil : p.decoder.rawValue
        self.seconds = seconds
    }

    /// The variation as the generation parameters take it.
    public var variation: VariationSeed? {
        guard let variationSeed, let variationStrength else { return nil }
        return VariationSeed(seed: variationSeed, strength: variationStrength)
    }
}
