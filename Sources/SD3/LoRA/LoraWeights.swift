import Foundation
import ImageMetadata
import SafeTensors
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

/// A `WeightProvider` that merges LoRAs into one component's weights as they are fetched (merged mode, `sd3 generate`):
/// W + Σ s·scale·B·A, summed in the listed order; everything else passes through. Whether every pair found a layer
/// of its shape is checked against the built model (`ActiveLoras.check`).
final class LoraWeights: WeightProvider {
    let base: any WeightProvider
    let component: SD3Component
    let loras: [(file: LoraFile, strength: Float)]

    init(base: any WeightProvider, component: SD3Component, loras: [(file: LoraFile, strength: Double)]) {
        (self.base, self.component, self.loras) = (base, component, loras.map { ($0.file, Float($0.strength)) })
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
        var result = weight.reshaped(matrix)
        for (file, strength) in loras where strength != 0 {
            guard let pair = file.pairs[component]?[key], [pair.up.shape[0], pair.down.shape[1]] == matrix else { continue }
            Self.addProduct(into: &result, up: pair.up, down: pair.down, scale: strength * pair.scale)
        }
        return result.reshaped(shape)
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
}
