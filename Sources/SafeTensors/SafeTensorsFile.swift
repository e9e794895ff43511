import Foundation
import Tensors
#if canImport(Glibc)
import Glibc
import RegularFiles
#endif

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data section (after the 8-byte length and the header).
    public let begin: Int
    public let end: Int
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { end - begin }
}

/// A memory-mapped safetensors file (https://github.com/huggingface/safetensors, format v0.8):
/// u64 little-endian header length N, N bytes of JSON, then the data section.
/// Opening validates the whole header; tensors are decoded on request.
public final class SafeTensorsFile: @unchecked Sendable {
    public static let maximumHeaderLength: UInt64 = 100_000_000

    public let path: String
    public let fileSize: Int
    /// Tensors in header order of their data offsets.
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    private let byName: [String: Int]
    private let base: UnsafeRawPointer?
    private let dataStart: Int

    public init(path: String) throws(SafeTensorsError) {
        self.path = path
        let opened: (descriptor: Int32, size: Int)
        do { opened = try RegularFile.open(path) } catch { throw .cannotOpen(path: path, reason: error.reason) }
        let fd = opened.descriptor
        defer { close(fd) }
        let size = opened.size
        fileSize = size
        guard size >= 8 else { throw .tooSmall(path: path, size: size) }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        let raw = UnsafeRawPointer(mapped)
        do throws(SafeTensorsError) {
            let headerLength = raw.loadUnaligned(as: UInt64.self).littleEndian
            guard headerLength <= SafeTensorsFile.maximumHeaderLength else { throw .headerTooLarge(path: path, headerLength: headerLength) }
            guard headerLength <= UInt64(size - 8) else {
                throw .headerLengthPastEnd(path: path, headerLength: headerLength, fileSize: size)
            }
            let start = 8 + Int(headerLength)
            let header = [UInt8](UnsafeRawBufferPointer(start: raw + 8, count: Int(headerLength)))
            let parsed = try SafeTensorsHeader.parse(header, path: path, dataSize: size - start, dataStart: start)
            base = raw
            dataStart = start
            tensors = parsed.tensors
            metadata = parsed.metadata
            byName = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
        } catch {
            munmap(mapped, size)
            throw error
        }
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }
    }

    public var names: [String] { tensors.map(\.name) }

    public func info(_ name: String) -> TensorInfo? { byName[name].map { tensors[$0] } }

    /// The raw bytes of a tensor, valid while this file object lives.
    public func bytes(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base! + dataStart + info.begin, count: info.byteCount)
    }

    /// Decodes a tensor to Float (F32, F16 and BF16; other dtypes are rejected by name).
    public func tensor(_ name: String) throws(SafeTensorsError) -> Tensor {
        guard let info = info(name) else { throw .missingKey(path: path, key: name) }
        return try tensor(info)
    }

    /// Decodes an integer tensor (I64, I32, I16, I8, U8 and the unsigned types that fit in Int).
    public func integers(_ name: String) throws(SafeTensorsError) -> (shape: [Int], values: [Int]) {
        guard let info = info(name) else { throw .missingKey(path: path, key: name) }
        let source = bytes(info)
        let n = info.elementCount
        func read<T: FixedWidthInteger>(_: T.Type) -> [Int] {
            (0..<n).map { Int(truncatingIfNeeded: T(littleEndian: source.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
        }
        switch info.dtype {
        case .i64: return (info.shape, read(Int64.self))
        case .i32: return (info.shape, read(Int32.self))
        case .u32: return (info.shape, read(UInt32.self))
        case .i16: return (info.shape, read(Int16.self))
        case .u16: return (info.shape, read(UInt16.self))
        case .i8: return (info.shape, read(Int8.self))
        case .u8: return (info.shape, read(UInt8.self))
        default: throw .undecodableDType(path: path, key: name, dtype: info.dtype.rawValue)
        }
    }

    /// Decodes a tensor to Float, then drops its pages from this process's mapping: the decoded copy is what
    /// models keep, so the file's pages would otherwise double the resident memory of a load (a 9.5 GB T5
    /// would need 19 GB). The data stays in the kernel's page cache, and a later read maps it back.
    public func tensor(_ info: TensorInfo) throws(SafeTensorsError) -> Tensor {
        defer { release(info) }
        return try decode(info)
    }

    /// Gives a tensor's pages back (MADV_DONTNEED on a private, never written mapping: nothing is lost).
    public func release(_ info: TensorInfo) {
        guard let base, info.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (dataStart + info.begin) / page * page
        let end = min(fileSize, (dataStart + info.end + page - 1) / page * page)
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    private func decode(_ info: TensorInfo) throws(SafeTensorsError) -> Tensor {
        let source = bytes(info)
        let n = info.elementCount
        switch info.dtype {
        case .f32:
            return Tensor(shape: info.shape) { out in
                if n > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: source.baseAddress!, byteCount: n * 4) }
            }
        case .f16:
            return Tensor(shape: info.shape) { out in
                for i in 0..<n { out[i] = HalfPrecision.float(f16: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            }
        case .bf16:
            return Tensor(shape: info.shape) { out in
                for i in 0..<n { out[i] = HalfPrecision.float(bf16: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            }
        case .f8e4m3:
            return Tensor(shape: info.shape) { out in
                for i in 0..<n { out[i] = Float8.e4m3fn[Int(source[i])] }
            }
        case .f8e5m2:
            return Tensor(shape: info.shape) { out in
                for i in 0..<n { out[i] = HalfPrecision.float(f16: UInt16(source[i]) << 8) }
            }
        default:
            throw .undecodableDType(path: path, key: info.name, dtype: info.dtype.rawValue)
        }
    }
}
