import Foundation
import Testing
import Tensors
@testable import SafeTensors

@Suite struct RoundTripTests {
    @Test func floatsRoundTripInEveryFloatDType() throws {
        let folder = TemporaryFolder()
        let values: [Float] = [0, -0.0, 1, -2.5, 0.1, 65504, 1e-7, -3.3e-5, .infinity, -.infinity, 3.14159, 1e30]
        let t = Tensor(shape: [3, 4], data: values)
        let writer = SafeTensorsWriter(entries: [.init("a.f32", t, as: .f32), .init("b.f16", t, as: .f16), .init("c.bf16", t, as: .bf16)],
                                       metadata: ["format": "pt", "note": "quote \" and \\ and \n"])
        let path = folder.path + "/floats.safetensors"
        try writer.write(to: path)
        let file = try SafeTensorsFile(path: path)
        #expect(file.metadata == writer.metadata)
        #expect(file.names.sorted() == ["a.f32", "b.f16", "c.bf16"])
        #expect(try file.tensor("a.f32") == t)
        let f16 = try file.tensor("b.f16"), bf16 = try file.tensor("c.bf16")
        #expect(f16.shape == [3, 4] && bf16.shape == [3, 4])
        for i in 0..<values.count {
            #expect(f16.data[i] == Float(Float16(values[i])), "f16 value \(i)")
            #expect(bf16.data[i] == HalfPrecision.float(bf16: HalfPrecision.bf16(values[i])), "bf16 value \(i)")
        }
        #expect(file.info("b.f16")?.dtype == .f16 && file.info("c.bf16")?.byteCount == 24)
    }

    @Test(arguments: DType.allCases)
    func everyDTypeKeepsItsBytes(dtype: DType) throws {
        let folder = TemporaryFolder()
        // 8 elements fill whole bytes for every type, the 4- and 6-bit ones included.
        let count = dtype.byteCount(elements: 8)!
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let writer = SafeTensorsWriter(entries: [.init(name: "x", dtype: dtype, shape: [2, 4], bytes: bytes),
                                                 .init(name: "empty", dtype: dtype, shape: [0, 3], bytes: [])])
        let path = folder.path + "/t.safetensors"
        try writer.write(to: path)
        let file = try SafeTensorsFile(path: path)
        let info = try #require(file.info("x"))
        #expect(info.dtype == dtype && info.shape == [2, 4])
        #expect(Array(file.bytes(info)) == bytes)
        #expect(file.info("empty")?.elementCount == 0)
        if dtype.isDecodable {
            #expect(try file.tensor("x").shape == [2, 4])
        } else {
            #expect(throws: SafeTensorsError.undecodableDType(path: path, key: "x", dtype: dtype.rawValue)) { try file.tensor("x") }
        }
    }

    @Test func headerIsPaddedTo8Bytes() {
        let bytes = SafeTensorsWriter(entries: [.init("w", Tensor(zeros: [3]))]).encoded()
        let length = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(length % 8 == 0)
        #expect(bytes.count == 8 + Int(length) + 12)
    }

    /// A sparse 5 GB file: a tensor past the 4 GiB mark must be found and decoded.
    @Test func filesOver4GB() throws {
        let folder = TemporaryFolder()
        let padding = 4_500_000_000
        let header = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[\(padding)],\"data_offsets\":[0,\(padding)]},\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\(padding),\(padding + 8)]}}"
        let head = rawFile(header: header)
        let path = folder.write("big.safetensors", head)
        let handle = try FileHandle(forWritingAtPath: path).unwrap()
        try handle.seek(toOffset: UInt64(head.count + padding))
        try handle.write(contentsOf: [Float(1.5), -7].withUnsafeBytes { Data($0) })
        try handle.close()
        let file = try SafeTensorsFile(path: path)
        #expect(file.fileSize == head.count + padding + 8)
        #expect(try file.tensor("tail").data == [1.5, -7])
        #expect(file.info("pad")?.byteCount == padding)
    }
}

extension Optional {
    func unwrap() throws -> Wrapped {
        guard let self else { throw CocoaError(.fileNoSuchFile) }
        return self
    }
}
