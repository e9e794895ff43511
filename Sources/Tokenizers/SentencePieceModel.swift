/// The parts of a SentencePiece `ModelProto` (spiece.model) a T5 tokenizer needs, read from the protobuf wire
/// format by hand. Field numbers from sentencepiece's `sentencepiece_model.proto`:
/// ModelProto { 1: repeated SentencePiece pieces; 2: TrainerSpec; 3: NormalizerSpec }
/// SentencePiece { 1: piece (string); 2: score (float); 3: type (enum, default NORMAL = 1) }
/// TrainerSpec { 3: model_type; 35: byte_fallback; 40: unk_id; 41: bos_id; 42: eos_id; 43: pad_id }
/// NormalizerSpec { 1: name; 2: precompiled_charsmap (bytes); 3: add_dummy_prefix; 4: remove_extra_whitespaces }
struct SentencePieceModel: Sendable {
    enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    struct Piece: Sendable {
        var piece: String
        var score: Float = 0
        var type: PieceType = .normal
    }

    var pieces: [Piece] = []
    var modelType = 1  // UNIGRAM
    var byteFallback = false
    var unknownId = 0
    var bosId = 1
    var eosId = 2
    var padId = -1
    var normalizerName = ""
    var precompiledCharsmap: [UInt8] = []
    /// Read for completeness; transformers 5.24's T5Tokenizer replaces both with WhitespaceSplit + Metaspace.
    var addDummyPrefix = true
    var removeExtraWhitespaces = true

    /// Parses `bytes`; the error string says what is wrong.
    init(_ bytes: [UInt8]) throws(ProtobufError) {
        var reader = ProtobufReader(bytes[...])
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, 2): pieces.append(try Self.piece(reader.lengthDelimited()))
            case (2, 2): try readTrainerSpec(reader.lengthDelimited())
            case (3, 2): try readNormalizerSpec(reader.lengthDelimited())
            default: try reader.skip(wire)
            }
        }
        guard !pieces.isEmpty else { throw ProtobufError(reason: "no pieces") }
    }

    private static func piece(_ bytes: ArraySlice<UInt8>) throws(ProtobufError) -> Piece {
        var reader = ProtobufReader(bytes)
        var piece = Piece(piece: "")
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, 2): piece.piece = try reader.string()
            case (2, 5): piece.score = Float(bitPattern: try reader.fixed32())
            case (3, 0):
                let raw = Int(truncatingIfNeeded: try reader.varint())
                guard let type = PieceType(rawValue: raw) else { throw ProtobufError(reason: "piece type \(raw)") }
                piece.type = type
            default: try reader.skip(wire)
            }
        }
        return piece
    }

    private mutating func readTrainerSpec(_ bytes: ArraySlice<UInt8>) throws(ProtobufError) {
        var reader = ProtobufReader(bytes)
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (3, 0): modelType = Int(truncatingIfNeeded: try reader.varint())
            case (35, 0): byteFallback = try reader.varint() != 0
            case (40, 0): unknownId = try reader.int32()
            case (41, 0): bosId = try reader.int32()
            case (42, 0): eosId = try reader.int32()
            case (43, 0): padId = try reader.int32()
            default: try reader.skip(wire)
            }
        }
    }

    private mutating func readNormalizerSpec(_ bytes: ArraySlice<UInt8>) throws(ProtobufError) {
        var reader = ProtobufReader(bytes)
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, 2): normalizerName = try reader.string()
            case (2, 2): precompiledCharsmap = Array(try reader.lengthDelimited())
            case (3, 0): addDummyPrefix = try reader.varint() != 0
            case (4, 0): removeExtraWhitespaces = try reader.varint() != 0
            default: try reader.skip(wire)
            }
        }
    }
}

struct ProtobufError: Error {
    var reason: String
}

/// Protobuf wire-format reading: varints, fixed32/64 and length-delimited fields; groups are rejected.
struct ProtobufReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    /// The next field number and wire type, or nil at the end.
    mutating func nextField() throws(ProtobufError) -> (Int, Int)? {
        if bytes.isEmpty { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0 else { throw ProtobufError(reason: "field number 0") }
        return (field, Int(key & 7))
    }

    mutating func varint() throws(ProtobufError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.popFirst() {
            guard shift < 64 else { throw ProtobufError(reason: "varint longer than 10 bytes") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw ProtobufError(reason: "truncated varint")
    }

    /// An `int32` field: negative values arrive as 10-byte varints; the low 32 bits hold the value.
    mutating func int32() throws(ProtobufError) -> Int {
        Int(Int32(truncatingIfNeeded: try varint()))
    }

    mutating func fixed32() throws(ProtobufError) -> UInt32 {
        guard bytes.count >= 4 else { throw ProtobufError(reason: "truncated fixed32") }
        let start = bytes.startIndex
        let value = UInt32(bytes[start]) | UInt32(bytes[start + 1]) << 8 | UInt32(bytes[start + 2]) << 16
            | UInt32(bytes[start + 3]) << 24
        bytes.removeFirst(4)
        return value
    }

    mutating func lengthDelimited() throws(ProtobufError) -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(bytes.count) else { throw ProtobufError(reason: "field runs past the end of the data") }
        let field = bytes.prefix(Int(length))
        bytes.removeFirst(Int(length))
        return field
    }

    mutating func string() throws(ProtobufError) -> String {
        let field = try lengthDelimited()
        guard let text = String(validating: field, as: UTF8.self) else { throw ProtobufError(reason: "string not UTF-8") }
        return text
    }

    mutating func skip(_ wire: Int) throws(ProtobufError) {
        switch wire {
        case 0: _ = try varint()
        case 1:
            guard bytes.count >= 8 else { throw ProtobufError(reason: "truncated fixed64") }
            bytes.removeFirst(8)
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw ProtobufError(reason: "unsupported wire type \(wire)")
        }
    }
}
