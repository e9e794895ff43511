import ArgumentParser
import SD3

/// The flags that complete a single-file checkpoint given as --model (ComfyUI's separate text encoder files).
struct ModelFiles: ParsableArguments {
    @Option(name: .customLong("clip-l"), help: "CLIP-L weights for a single-file --model that lacks them (e.g. text_encoders/clip_l.safetensors).")
    var clipL: String?
    @Option(name: .customLong("clip-g"), help: "CLIP-G weights for a single-file --model that lacks them (e.g. text_encoders/clip_g.safetensors).")
    var clipG: String?
    @Option(help: "A diffusers folder or cached repo id whose configs and tokenizers go with a single-file --model (default: configs from the file's shapes).")
    var configFrom: String?

    func extras(t5File: String?) -> ModelSource.Extras {
        ModelSource.Extras(clipL: clipL, clipG: clipG, t5: t5File, config: configFrom)
    }
}
