import Foundation
import ImageMetadata
import SafeTensors
import Synchronization
import Tensors

/// A LoRA file and its strength, as the user chose them (`--lora FILE:STRENGTH`).
public struct LoraChoice: Sendable, Equatable {
    public var path: String
    public var strength: Double
    public init(path: String, strength: Double = 1) { (self.path, self.strength) = (path, strength) }

    /// `FILE` or `FILE:STRENGTH` (the last colon splits, so paths with colons work when a strength is given).
    public init(parsing text: String) throws {
        if let colon = text.lastIndex(of: ":"), let strength = Double(text[text.index(after: colon)...]) {
            guard strength.isFinite, GenerationLimits.loraStrength.contains(strength) else {
                throw LoraError.strengthOutOfRange(path: String(text[..<colon]), strength: strength)
            }
            self.init(path: String(text[..<colon]), strength: strength)
        } else if text.hasSuffix(":") || text.isEmpty {
            throw LoraError.badStrength(text)
        } else {
            self.init(path: text)
        }
    }
}

public enum LoraMode: String, Sendable, Equatable {
    /// W += s·B·A once at load: plain speed, fixed strengths (`sd3 generate`).
    case merged
    /// y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ: the base weights stay untouched, LoRAs and strengths change between runs (the studio).
    case runTime

    /// The name ImageMetadata records.
    public var recordedName: String { self == .merged ? "merged" : "run-time" }

    public init?(recordedName: String) {
        switch recordedName {
        case "merged": self = .merged
        case "run-time": self = .runTime
        default: return nil
        }
    }
}

/// The LoRAs applied to one pipeline's models. Models fetch weights through `LoraWeights`, which merges the pairs
/// (merged mode) or hands each linear layer an adapter slot (run-time mode); `set` swaps the run-time list.
public final class LoraSet: Sendable {
    public let mode: LoraMode
    private struct State {
        var active: [(file: LoraFile, strength: Float)] = []
        /// The strengths as given, for the metadata (0.9, not Float(0.9) widened back to 0.8999999761581421).
        var given: [Double] = []
        var slots: [SD3Component: [String: (adapters: LowRankAdapters, shape: [Int])]] = [:]
        var shapes: [SD3Component: [String: [Int]]] = [:]
    }
    private let state = Mutex(State())

    public init(mode: LoraMode, loras: [(file: LoraFile, strength: Double)]) {
        self.mode = mode
        state.withLock { state in
            state.active = loras.map { ($0.file, Float($0.strength)) }
            state.given = loras.map(\.strength)
        }
    }

    /// The LoRAs now applied, with their strengths.
    public var active: [(file: LoraFile, strength: Double)] { state.withLock { state in zip(state.active, state.given).map { ($0.file, $1) } } }

    /// Replaces the run-time list: every pair is checked against the loaded layers first, so a bad file changes nothing.
    /// Removing a LoRA drops its pairs, which leaves the untouched base weights: the base image comes back bit for bit.
    public func set(_ loras: [(file: LoraFile, strength: Double)]) throws {
        guard mode == .runTime else { throw LoraError.notRunTime }
        try state.withLock { state in
            let active = loras.map { (file: $0.file, strength: Float($0.strength)) }
            for (component, slots) in state.slots {
                try Self.check(active, component: component, shapes: slots.mapValues(\.shape))
            }
            state.active = active
            state.given = loras.map(\.strength)
            for (component, slots) in state.slots {
                for (key, slot) in slots { slot.adapters.pairs = Self.adapterPairs(active, component: component, key: key) }
            }
        }
    }

    /// Throws for the first pair of `component` that names no fetched layer or has another shape.
    static func check(_ active: [(file: LoraFile, strength: Float)], component: SD3Component, shapes: [String: [Int]]) throws {
        for (file, _) in active {
            for (key, pair) in (file.pairs[component] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let found = [pair.up.shape[0], pair.down.shape[1]]
                guard let expected = shapes[key] else {
                    throw LoraError.matchesNothing(path: file.path, key: pair.sourceKey, target: component.rawValue + "." + key)
                }
                if expected != found {
                    throw LoraError.shapeMismatch(path: file.path, key: pair.sourceKey, target: component.rawValue + "." + key,
                                                  expected: expected, found: found,
                                                  model: component == .transformer ? LoraKeyMap.modelWithWidth(found[1]) : nil)
                }
            }
        }
    }

    static func adapterPairs(_ active: [(file: LoraFile, strength: Float)], component: SD3Component, key: String) -> [LowRankAdapters.Pair] {
        active.compactMap { file, strength in
            guard strength != 0, let pair = file.pairs[component]?[key] else { return nil }
            return LowRankAdapters.Pair(down: Weight(pair.down, format: .fp32), up: Weight(pair.up, format: .fp32),
                                        scale: strength * pair.scale)
        }
    }

    /// The base weight with every active pair merged: W + Σ s·scale·B·A, summed in the listed order.
    func merged(_ weight: Tensor, component: SD3Component, key: String) -> Tensor {
        let active = state.withLock { $0.active }
        var result = weight
        for (file, strength) in active where strength != 0 {
            guard let pair = file.pairs[component]?[key], [pair.up.shape[0], pair.down.shape[1]] == weight.shape else { continue }
            Self.addProduct(into: &result, up: pair.up, down: pair.down, scale: strength * pair.scale)
        }
        return result
    }

    /// out[o, i] += scale · Σr up[o, r]·down[r, i]  (up [out, r], down [r, in]).
    static func addProduct(into out: inout Tensor, up: Tensor, down: Tensor, scale: Float) {
        let (rows, rank, columns) = (up.shape[0], up.shape[1], down.shape[1])
        out.data.withUnsafeMutableBufferPointer { w in
            down.data.withUnsafeBufferPointer { a in
                for o in 0..<rows {
                    var row = [Float](repeating: 0, count: columns)
                    for r in 0..<rank {
                        let u = up.data[o * rank + r]
                        for i in 0..<columns { row[i] += u * a[r * columns + i] }
                    }
                    for i in 0..<columns { w[o * columns + i] += scale * row[i] }
                }
            }
        }
    }

    func record(_ component: SD3Component, key: String, shape: [Int]) {
        state.withLock { $0.shapes[component, default: [:]][key] = shape }
    }

    /// A run-time slot for a linear layer, filled from the active list.
    func slot(_ component: SD3Component, key: String) -> LowRankAdapters? {
        state.withLock { state in
            guard let shape = state.shapes[component]?[key] else { return nil }
            if let existing = state.slots[component]?[key] { return existing.adapters }
            let adapters = LowRankAdapters()
            adapters.pairs = Self.adapterPairs(state.active, component: component, key: key)
            state.slots[component, default: [:]][key] = (adapters, shape)
            return adapters
        }
    }

    /// After a model is built: every active pair for `component` found a layer of its shape (else the first bad key).
    public func requireAllMatched(_ component: SD3Component) throws {
        let (active, shapes) = state.withLock { state in
            (state.active, mode == .runTime ? (state.slots[component] ?? [:]).mapValues(\.shape) : state.shapes[component] ?? [:])
        }
        try Self.check(active, component: component, shapes: shapes)
    }
}

/// A `WeightProvider` that applies a `LoraSet` to one component's weights; everything else passes through.
final class LoraWeights: WeightProvider {
    let base: any WeightProvider
    let component: SD3Component
    let loras: LoraSet

    init(base: any WeightProvider, component: SD3Component, loras: LoraSet) {
        (self.base, self.component, self.loras) = (base, component, loras)
    }

    var source: String { base.source }
    func contains(_ key: String) -> Bool { base.contains(key) }
    func markUsed(_ key: String) { base.markUsed(key) }
    var unusedKeys: [String] { base.unusedKeys }
    func shape(of key: String) -> [Int]? { base.shape(of: key) }

    func tensor(_ key: String, shape: [Int]) throws(SafeTensorsError) -> Tensor {
        let weight = try base.tensor(key, shape: shape)
        guard shape.count == 2 || shape.count == 4, key.hasSuffix(".weight") else { return weight }
        // A convolution [out, in, kh, kw] takes its LoRA on the flattened kernel [out, in·kh·kw] (see LoraFile).
        let matrix = [shape[0], shape.dropFirst().reduce(1, *)]
        loras.record(component, key: key, shape: matrix)
        guard loras.mode == .merged else { return weight }
        return loras.merged(weight.reshaped(matrix), component: component, key: key).reshaped(shape)
    }

    func adapters(for key: String) -> LowRankAdapters? {
        loras.mode == .runTime ? loras.slot(component, key: key) : nil
    }
}
