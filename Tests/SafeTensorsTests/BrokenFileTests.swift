import Foundation
import Testing
import Tensors
@testable import SafeTensors

/// Each kind of broken file gives its own typed error naming the problem; none crashes.
@Suite struct BrokenFileTests {
    static let good = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    static let eight = [UInt8](repeating: 0, count: 8)

    struct Case: Sendable, CustomStringConvertible {
        let description: String
        let bytes: [UInt8]
        let expect: @Sendable (SafeTensorsError) -> Bool
    }

    static let cases: [Case] = [
        Case(description: "empty file", bytes: []) { if case .tooSmall(_, 0) = $0 { true } else { false } },
        Case(description: "shorter than the length field", bytes: [1, 0, 0]) { if case .tooSmall = $0 { true } else { false } },
        Case(description: "header length past end", bytes: rawFile(header: good, data: eight, headerLength: 4096)) {
            if case .headerLengthPastEnd(_, 4096, _) = $0 { true } else { false } },
        Case(description: "header length huge", bytes: rawFile(header: good, data: eight, headerLength: UInt64.max)) {
            if case .headerTooLarge = $0 { true } else { false } },
        Case(description: "truncated data", bytes: rawFile(header: good, data: [0, 0, 0])) {
            if case let .truncated(_, expected, actual) = $0 { expected - actual == 5 } else { false } },
        Case(description: "empty header", bytes: rawFile(header: "")) { if case .invalidHeader = $0 { true } else { false } },
        Case(description: "bad JSON", bytes: rawFile(header: #"{"w":{"dtype":"F32","#, data: eight)) { if case .invalidHeader = $0 { true } else { false } },
        Case(description: "JSON array", bytes: rawFile(header: "[1,2]")) { if case .invalidHeader = $0 { true } else { false } },
        Case(description: "trailing garbage", bytes: rawFile(header: good + "}", data: eight)) { if case .invalidHeader = $0 { true } else { false } },
        Case(description: "invalid UTF-8", bytes: rawFile(header: "{\"w\u{1}\"}")) { if case .invalidHeader = $0 { true } else { false } },
        Case(description: "deep nesting", bytes: rawFile(header: String(repeating: "[", count: 100_000))) { if case .invalidHeader = $0 { true } else { false } },
        Case(description: "duplicate key", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight)) {
            if case .invalidHeader = $0 { true } else { false } },
        Case(description: "unknown dtype", bytes: rawFile(header: #"{"w":{"dtype":"F13","shape":[2],"data_offsets":[0,8]}}"#, data: eight)) {
            if case .unknownDType(_, "w", "F13") = $0 { true } else { false } },
        Case(description: "missing dtype", bytes: rawFile(header: #"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, data: eight)) {
            if case .invalidEntry(_, "w", _) = $0 { true } else { false } },
        Case(description: "negative dimension", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight)) {
            if case .invalidEntry(_, "w", _) = $0 { true } else { false } },
        Case(description: "fractional dimension", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, data: eight)) {
            if case .invalidEntry = $0 { true } else { false } },
        Case(description: "shape overflows", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: eight)) {
            if case .invalidEntry = $0 { true } else { false } },
        Case(description: "shape/size mismatch", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight)) {
            if case .sizeMismatch(_, "w", "F32", [3], 12, 8) = $0 { true } else { false } },
        Case(description: "sub-byte tensor not filling a byte", bytes: rawFile(header: #"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}"#, data: [0])) {
            if case .sizeMismatch(_, "w", "F4", [3], nil, 1) = $0 { true } else { false } },
        Case(description: "offsets out of range", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: eight)) {
            if case .offsetsOutOfRange(_, "w", 8, 16, 8) = $0 { true } else { false } },
        Case(description: "offsets reversed", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight)) {
            if case .offsetsOutOfRange = $0 { true } else { false } },
        Case(description: "one offset", bytes: rawFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, data: eight)) {
            if case .invalidEntry = $0 { true } else { false } },
        Case(description: "overlapping tensors", bytes: rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight)) {
            if case .overlap(_, "a", "b") = $0 { true } else { false } },
        Case(description: "metadata not strings", bytes: rawFile(header: #"{"__metadata__":{"n":1}}"#)) { if case .invalidHeader = $0 { true } else { false } },
        Case(description: "entry not an object", bytes: rawFile(header: #"{"w":[1,2]}"#)) { if case .invalidEntry(_, "w", _) = $0 { true } else { false } },
    ]

    @Test(arguments: cases)
    func brokenFileGivesNamedError(_ c: Case) {
        let folder = TemporaryFolder()
        let path = folder.write("broken.safetensors", c.bytes)
        do {
            _ = try SafeTensorsFile(path: path)
            Issue.record("\(c): opened without error")
        } catch {
            #expect(c.expect(error), "\(c): unexpected error \(error)")
            #expect(error.description.hasPrefix(path), "\(c): message does not name the file: \(error)")
        }
    }

    @Test func missingFileAndFolder() {
        let folder = TemporaryFolder()
        #expect { try SafeTensorsFile(path: folder.path + "/nope.safetensors") } throws: { error in
            guard case SafeTensorsError.cannotOpen(_, let reason) = error else { return false }
            return reason.contains("no such file")
        }
        #expect { try SafeTensorsFile(path: folder.path) } throws: { error in
            if case SafeTensorsError.cannotOpen(_, "is a folder, not a regular file") = error { return true }
            return false
        }
    }

    /// 10,000 random mutations of a valid file (byte flips, truncations, insertions, header-length edits):
    /// each either opens, with every tensor inside the file and decodable, or throws a SafeTensorsError.
    @Test func randomMutationsNeverCrash() throws {
        let folder = TemporaryFolder()
        var random = SplitMix(state: 42)
        let t = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let valid = SafeTensorsWriter(entries: [.init("model.a.weight", t), .init("b", t, as: .bf16), .init("c", t, as: .f16),
                                                .init(name: "d", dtype: .i64, shape: [2], bytes: [UInt8](repeating: 7, count: 16))],
                                      metadata: ["format": "pt"]).encoded()
        var opened = 0, rejected = 0
        let path = folder.path + "/fuzz.safetensors"
        for _ in 0..<10_000 {
            var bytes = valid
            for _ in 0..<(1 + random.below(4)) {
                switch random.below(6) {
                case 0: bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.removeLast(random.below(bytes.count))
                case 2: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: random.below(bytes.count + 1))
                case 3: if bytes.count >= 8 { bytes[random.below(8)] = UInt8(truncatingIfNeeded: random.next()) }
                case 4 where bytes.count > 8:  // a structural character somewhere in the header
                    let symbols = Array("{}[]\":,0123456789-.eE ".utf8)
                    bytes[8 + random.below(max(1, min(bytes.count - 8, 300)))] = symbols[random.below(symbols.count)]
                default: if !bytes.isEmpty { bytes.remove(at: random.below(bytes.count)) }
                }
                if bytes.isEmpty { break }
            }
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            do {
                let file = try SafeTensorsFile(path: path)
                opened += 1
                for info in file.tensors {
                    #expect(8 + info.end <= bytes.count)
                    if info.dtype.isDecodable { #expect(try file.tensor(info).count == info.elementCount) }
                }
            } catch {
                rejected += 1
            }
        }
        #expect(opened + rejected == 10_000)
        #expect(rejected > 5_000, "most mutations should break the file (\(rejected) rejected)")
    }
}
