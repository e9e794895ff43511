/// The studio's input fields, in Tab order.
public enum FieldID: String, Sendable, CaseIterable {
    case prompt, negativePrompt, steps, guidance, seed, seedMode, width, height, sizePreset, shift, t5, precision, initImage, strength
    case variationSeed, variationStrength, recipe, scheduler

    public enum Kind: Sendable { case multiLine, singleLine, choice }

    /// Fields that hold a whole number: only digits can be typed into them (letters once sat there until F5).
    public var isWholeNumber: Bool {
        switch self {
        case .steps, .seed, .width, .height, .variationSeed: return true
        default: return false
        }
    }

    public var kind: Kind {
        switch self {
        case .prompt, .negativePrompt: return .multiLine
        case .seedMode, .sizePreset, .t5, .precision, .recipe, .scheduler: return .choice
        default: return .singleLine
        }
    }

    public var label: String {
        switch self {
        case .prompt: return "Prompt"
        case .negativePrompt: return "Negative prompt"
        case .steps: return "Steps"
        case .guidance: return "Guidance"
        case .seed: return "Seed"
        case .seedMode: return "Seed mode"
        case .width: return "Width"
        case .height: return "Height"
        case .sizePreset: return "Preset"
        case .shift: return "Shift"
        case .t5: return "T5"
        case .precision: return "Precision"
        case .initImage: return "Init image"
        case .strength: return "Strength"
        case .variationSeed: return "Var. seed"
        case .variationStrength: return "Var. str."
        case .recipe: return "Recipe"
        case .scheduler: return "Scheduler"
        }
    }

    /// What an empty field means, shown in its place: the model's shift, no init image, no variation.
    public var emptyMeaning: String? {
        switch self {
        case .shift: return "model"
        case .initImage: return "none"
        case .variationSeed: return "off"
        default: return nil
        }
    }
}

/// How the seed changes from one generation to the next.
public enum SeedMode: String, Sendable, CaseIterable {
    case fixed, random, increment
}

public enum PrecisionChoice: String, Sendable, CaseIterable {
    case fp32, bf16
}

/// T5-XXL as `sd3 generate --t5` takes it: loaded, loaded with int8 projections (half the memory), or not at all.

/// Width × height presets: SD3's 1-megapixel aspect buckets and smaller squares (the tiny test model takes ≤ 64).
public enum SizePresets {
    public static let all: [(width: Int, height: Int)] = [
        (1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344),
        (768, 768), (512, 512), (64, 64), (32, 32), (16, 16),
    ]

    public static func index(width: Int, height: Int) -> Int? {
        all.firstIndex { $0.width == width && $0.height == height }
    }
}

/// Where a choice field goes on Left/Right/Space: the next or previous value, wrapping around.
func cycled<T: CaseIterable & Equatable>(_ value: T, by delta: Int) -> T where T.AllCases: RandomAccessCollection, T.AllCases.Index == Int {
    let all = T.allCases
    let i = all.firstIndex(of: value) ?? 0
    return all[((i + delta) % all.count + all.count) % all.count]
}
