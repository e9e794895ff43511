/// The element types of the safetensors format (safetensors 0.8 `Dtype`).
public enum DType: String, Sendable, CaseIterable, Codable {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8"
    case f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3", f8e8m0 = "F8_E8M0"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"
    case f4 = "F4", f6e2m3 = "F6_E2M3", f6e3m2 = "F6_E3M2"

    /// Bits per element (the sub-byte types pack several values in a byte).
    public var bits: Int {
        switch self {
        case .f4: return 4
        case .f6e2m3, .f6e3m2: return 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .i64, .u64, .f64: return 64
        }
    }

    /// Bytes taken by `count` elements, or nil when they do not fill whole bytes.
    public func byteCount(elements count: Int) -> Int? {
        let (total, overflow) = count.multipliedReportingOverflow(by: bits)
        guard !overflow, total % 8 == 0 else { return nil }
        return total / 8
    }

    /// Types this engine decodes to Float.
    public var isDecodable: Bool { [.f32, .f16, .bf16, .f8e4m3, .f8e5m2].contains(self) }
}
