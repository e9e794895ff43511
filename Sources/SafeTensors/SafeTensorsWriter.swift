import Foundation
import Tensors

/// Writes safetensors files: the header JSON padded with spaces to a multiple of 8 bytes
/// (as the reference writer does), tensors in the order given, written to a temporary file
/// and renamed into place so a failed write never leaves a half file under the final name.
public struct SafeTensorsWriter {
    public struct Entry {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]

        /// A float tensor encoded as F32, F16 or BF16 (round to nearest even).
        public init(_ name: String, _ tensor: Tensor, as dtype: DType = .f32) {
            precondition([.f32, .f16, .bf16].contains(dtype), "SafeTensorsWriter: cannot encode floats as \(dtype.rawValue)")
            self.name = name
            self.dtype = dtype
            self.shape = tensor.shape
            switch dtype {
            case .f32: bytes = tensor.data.withUnsafeBytes { Array($0) }
            case .f16: bytes = tensor.data.map(HalfPrecision.f16).withUnsafeBytes { Array($0) }
            default: bytes = tensor.data.map(HalfPrecision.bf16).withUnsafeBytes { Array($0) }
            }
        }

        /// Raw little-endian bytes of any dtype.
        public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
    }

    public var entries: [Entry] = []
    public var metadata: [String: String] = [:]

    public init(entries: [Entry] = [], metadata: [String: String] = [:]) {
        self.entries = entries
        self.metadata = metadata
    }

    /// The complete file as bytes.
    public func encoded() -> [UInt8] {
        var json = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(JSONText.quoted($0.key)):\(JSONText.quoted($0.value))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            fields.append("\(JSONText.quoted(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
        }
        json += fields.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for e in entries { out.append(contentsOf: e.bytes) }
        return out
    }

    public func write(to path: String) throws(SafeTensorsError) {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).partial")
        do {
            try Data(encoded()).write(to: temporary)
            // rename(2) replaces an existing file atomically.
            guard rename(temporary.path, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(errno))]) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw .writeFailed(path: path, reason: error.localizedDescription)
        }
    }
}
