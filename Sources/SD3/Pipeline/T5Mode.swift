/// How T5-XXL runs, everywhere one is chosen (flags, the studio's field, the config, recipes, PNG metadata).
public enum T5Mode: String, Sendable, CaseIterable, Codable {
    /// At the pipeline's precision.
    case on
    /// Its projections weight-only int8 (half of bf16's memory).
    case int8
    /// Not loaded: its embeddings are zeros.
    case off

    /// What a PNG records: `t5` false is off; `t5Weights` "int8" is int8.
    public init(t5: Bool, weights: String?) {
        self = !t5 ? .off : weights == "int8" ? .int8 : .on
    }
}
