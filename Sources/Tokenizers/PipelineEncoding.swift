/// The ids a diffusers SD3 pipeline feeds a text encoder, and the truncation warning it logs
/// (`StableDiffusion3Pipeline._get_clip_prompt_embeds` / `_get_t5_prompt_embeds`, diffusers 0.42.1).
public struct PipelineEncoding: Sendable, Equatable {
    /// `tokenizer(prompt, padding="max_length", max_length=maxLength, truncation=True)["input_ids"]`:
    /// the content ids truncated so the special tokens still fit (the end token stays last), then padded.
    public var ids: [Int]
    /// `tokenizer(prompt, padding="longest")["input_ids"]` for the single prompt: every id, specials included.
    public var untruncatedIds: [Int]
    /// What the pipeline warns was cut off, `tokenizer.batch_decode(untruncated_ids[:, start : -1])[0]`;
    /// nil when the pipeline logs nothing (the untruncated ids are shorter than `ids`, or equal to them).
    public var removedText: String?

    /// Truncates `content` to leave room for `prefix` and `suffix` within `maxLength` (tokenizers'
    /// `truncate_encodings` with the post-processor's added-token count, then the post-processor), pads to
    /// `maxLength` on the right, and decodes the removed part the way diffusers does.
    static func make(content: [Int], prefix: [Int], suffix: [Int], maxLength: Int, padId: Int,
                     removedTextStart: Int, decode: ([Int]) -> String) -> PipelineEncoding {
        precondition(maxLength >= prefix.count + suffix.count,
                     "maxLength \(maxLength) leaves no room for the \(prefix.count + suffix.count) special tokens")
        let untruncated = prefix + content + suffix
        var ids = prefix + content.prefix(maxLength - prefix.count - suffix.count) + suffix
        ids += Array(repeating: padId, count: maxLength - ids.count)
        var removed: String?
        if untruncated.count >= ids.count && untruncated != ids {
            // Python's untruncated[start:-1]: from `start` (clamped) up to, not including, the last id.
            let end = untruncated.count - 1
            let start = min(max(removedTextStart, 0), end)
            removed = decode(Array(untruncated[start..<end]))
        }
        return PipelineEncoding(ids: ids, untruncatedIds: untruncated, removedText: removed)
    }
}
