import Foundation
import FuzzSupport
import Testing
@testable import SafeTensors

/// Seeded mutations of valid safetensors headers through the header parser every file open uses: each either throws
/// a SafeTensorsError naming the file or yields tensors that a naive re-check finds inside the data, sized by their
/// dtype and shape, and not overlapping; the slowest case stays far under a second (the parser is linear).
@Suite struct SafeTensorsHeaderFuzzTests {
    static let dataSize = 4096

    static let corpus: [[UInt8]] = [
        #"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}}"#,
        #"{"__metadata__":{"format":"pt","name":"x"},"w":{"dtype":"F16","shape":[8,8],"data_offsets":[0,128]}}"#,
        #"{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"u":{"dtype":"U8","shape":[3,1,1],"data_offsets":[8,11]}}"#,
        #"{"s":{"dtype":"F8_E4M3","shape":[],"data_offsets":[0,1]},"t":{"dtype":"BOOL","shape":[16],"data_offsets":[1,17]}}"#,
        #"{"k\u00e9y \"q\"":{"dtype":"F64","shape":[2,2],"data_offsets":[100,132]}}"#,
    ].map { Array($0.utf8) }

    @Test func mutatedHeadersNeverCrash() {
        var accepted = 0, refused = 0
        let parse = { (bytes: [UInt8]) in
            do throws(SafeTensorsError) {
                let parsed = try SafeTensorsHeader.parse(bytes, path: "fuzz.safetensors", dataSize: Self.dataSize, dataStart: 8 + bytes.count)
                accepted += 1
                Self.check(parsed.tensors, bytes: bytes)
            } catch {
                refused += 1
                #expect(error.description.hasPrefix("fuzz.safetensors") && !error.description.contains("\n"), "\(error)")
            }
        }
        let slowest = Fuzz.run(corpus: Self.corpus, seed: 17, parse)
        let seconds = Fuzz.confirmedSeconds(slowest, parse)
        #expect(seconds < Fuzz.hangGuard, "slowest header took \(seconds) s: \(String(decoding: Array(slowest.input.prefix(200)), as: UTF8.self))")
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused): the mutations reach both sides")
    }

    /// The independent truth: bounds, sizes from dtype × shape (overflow-checked here) and pairwise no overlap.
    static func check(_ tensors: [TensorInfo], bytes: [UInt8]) {
        let text = String(decoding: Array(bytes.prefix(200)), as: UTF8.self)
        for t in tensors {
            #expect(0 <= t.begin && t.begin <= t.end && t.end <= dataSize, "\(t.name) [\(t.begin), \(t.end)) outside the data: \(text)")
            var elements = 1, overflow = false
            for d in t.shape {
                #expect(d >= 0, "\(t.name): negative size: \(text)")
                let product = elements.multipliedReportingOverflow(by: d)
                (elements, overflow) = (product.partialValue, overflow || product.overflow)
            }
            #expect(!overflow, "\(t.name): shape \(t.shape) overflows: \(text)")
            let bits: [DType: Int] = [.f64: 64, .f32: 32, .f16: 16, .bf16: 16, .i64: 64, .i32: 32, .i16: 16, .i8: 8, .u8: 8,
                                      .f8e4m3: 8, .f8e5m2: 8, .bool: 8]
            if let size = bits[t.dtype] { #expect(t.byteCount == elements * size / 8, "\(t.name): \(t.byteCount) bytes for \(t.shape) \(t.dtype)") }
        }
        guard tensors.count <= 64 else { return }
        for (i, a) in tensors.enumerated() {
            for b in tensors[(i + 1)...] where a.byteCount > 0 && b.byteCount > 0 {
                #expect(a.end <= b.begin || b.end <= a.begin, "\(a.name) and \(b.name) overlap: \(text)")
            }
        }
    }
}
