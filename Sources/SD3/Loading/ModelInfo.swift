import Foundation
import SafeTensors

/// What `sd3 info` reports about a safetensors file or a diffusers model folder.
public struct ModelInfo: Sendable {
    public enum Kind: Sendable, Equatable {
        case file
        /// A diffusers pipeline folder (model_index.json) with its pipeline class.
        case pipeline(className: String, diffusersVersion: String?)
        /// One diffusers/transformers component folder (config.json + weights).
        case component
    }

    public let path: String
    public let kind: Kind
    public let components: [ComponentInfo]
    /// Optional components model_index.json lists as [null, null] (e.g. SD3's image_encoder).
    public var absentComponents: [String] = []
}

public struct ComponentInfo: Sendable {
    public let name: String
    /// From model_index.json: ["diffusers", "SD3Transformer2DModel"]; nil for a lone file or folder.
    public let library: String?
    public let declaredClass: String?
    /// The class named by the component's own config file, when it has one.
    public let configClass: String?
    public let weights: [WeightSet]
    public let otherFiles: [String]
    public let metadata: [String: String]

    /// The weight set a loader uses: the plain files, else the only variant.
    public var primaryWeights: WeightSet? { weights.first { $0.variant == nil } ?? weights.first }
}

/// One set of safetensors files: the plain `model.safetensors` (maybe sharded) or a variant (`.fp16.`).
public struct WeightSet: Sendable {
    public let variant: String?
    public let files: [String]
    public let tensorCount: Int
    public let parameterCount: Int
    public let bytes: Int
    public let dtypes: [DType: Int]
}

public enum ModelInfoError: Error, CustomStringConvertible, Equatable {
    case notFound(String)
    case invalidJSON(path: String, reason: String)
    case notAModel(String)
    case missingComponentFolder(component: String, path: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): no such file or folder"
        case let .invalidJSON(path, reason): return "\(path): \(reason)"
        case let .notAModel(path): return "\(path): neither a .safetensors file nor a model folder (no model_index.json, config.json or .safetensors files)"
        case let .missingComponentFolder(component, path): return "\(path): model_index.json names component '\(component)' but the folder is missing"
        }
    }
}
