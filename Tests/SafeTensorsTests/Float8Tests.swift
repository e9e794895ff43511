import Foundation
import Testing
@testable import SafeTensors

/// F8_E4M3 (torch.float8_e4m3fn) and F8_E5M2 decoding: every special case of the formats.
@Suite struct Float8Tests {
    @Test func e4m3fnValues() throws {
        let table = Float8.e4m3fn
        #expect(table[0x00] == 0 && table[0x80] == 0 && table[0x80].sign == .minus)
        #expect(table[0x38] == 1 && table[0xB8] == -1)  // exponent 7 = bias
        #expect(table[0x7E] == 448 && table[0xFE] == -448)  // the largest finite: exponent 15 is not infinity
        #expect(table[0x7F].isNaN && table[0xFF].isNaN)  // the only NaNs
        #expect(table.filter(\.isNaN).count == 2 && !table.contains(where: \.isInfinite))
        #expect(table[0x01] == 0x1p-9 && table[0x07] == 7 * 0x1p-9)  // subnormals m/8·2⁻⁶
        #expect(table[0x08] == 0x1p-6)  // the smallest normal
        #expect(table[0x3C] == 1.5 && table[0x40] == 2)
    }

    @Test func decodesFromAFile() throws {
        let folder = NSTemporaryDirectory() + "f8-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/f8.safetensors"
        try SafeTensorsWriter(entries: [.init(name: "a", dtype: .f8e4m3, shape: [4], bytes: [0x38, 0xC0, 0x01, 0x7E]),
                                        .init(name: "b", dtype: .f8e5m2, shape: [3], bytes: [0x3C, 0x7C, 0xC0])]).write(to: path)
        let file = try SafeTensorsFile(path: path)
        #expect(try file.tensor("a").data == [1, -2, 0x1p-9, 448])
        #expect(try file.tensor("b").data == [1, .infinity, -2])
    }
}
