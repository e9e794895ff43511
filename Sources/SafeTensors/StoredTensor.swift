import Tensors

/// A weight as a checkpoint holds it: name (prefix stripped), shape, and how to read it.
public struct StoredTensor: Sendable {
    public let name: String
    public let shape: [Int]
    public let dtype: DType
    /// The file that holds it (for messages).
    public let path: String
    let read: @Sendable () throws(SafeTensorsError) -> Tensor

    public init(name: String, shape: [Int], dtype: DType = .f32, path: String, read: @escaping @Sendable () throws(SafeTensorsError) -> Tensor) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.path = path
        self.read = read
    }

    /// The tensors of `file` whose names start with `prefix`, the prefix removed.
    ///
    /// ComfyUI's "scaled fp8" files (`t5xxl_fp8_e4m3fn_scaled.safetensors`, `sd3.5_large_fp8_scaled.safetensors`) store
    /// `W.weight` in fp8 with a scalar `W.scale_weight` beside it: the weight is their product (comfy/ops.py,
    /// scaled_fp8_ops). The scale is folded in here; the `scaled_fp8` marker and the `scale_input` activation scales
    /// (used only by fp8 matrix products) are left out.
    public static func all(in file: SafeTensorsFile, prefix: String) -> [StoredTensor] {
        let infos = file.tensors.filter { $0.name.hasPrefix(prefix) }
        let names = Set(infos.map(\.name))
        let isScaled = names.contains(prefix + "scaled_fp8")
        return infos.compactMap { info in
            let name = String(info.name.dropFirst(prefix.count))
            if isScaled && (name == "scaled_fp8" || name.hasSuffix(".scale_weight") || name.hasSuffix(".scale_input")) { return nil }
            let scaleName = info.name.hasSuffix(".weight") ? String(info.name.dropLast(".weight".count)) + ".scale_weight" : ""
            let scale = isScaled && names.contains(scaleName) ? file.info(scaleName) : nil
            return StoredTensor(name: name, shape: info.shape, dtype: info.dtype, path: file.path + ":" + info.name) {
                () throws(SafeTensorsError) -> Tensor in
                var tensor = try file.tensor(info)
                if let scale {
                    let factor = try file.tensor(scale)
                    guard factor.data.count == 1 else {
                        throw .shapeMismatch(path: file.path, key: scale.name, expected: [], found: scale.shape)
                    }
                    for i in tensor.data.indices { tensor.data[i] *= factor.data[0] }
                }
                return tensor
            }
        }
    }
}
