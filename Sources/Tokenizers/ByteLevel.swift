/// GPT-2's reversible byte ↔ character table (`bytes_to_unicode` in OpenAI's `encoder.py`; tokenizers
/// `pre_tokenizers/byte_level.rs`, `bytes_char`): bytes 33–126, 161–172 and 174–255 stand for themselves, the other
/// 68 bytes map to U+0100 + n in increasing byte order. BPE vocabularies such as CLIP's are spelled in these
/// characters, so "!" (byte 33) is the first token, id 0.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The bytes in `bytes_to_unicode`'s dict order (the printable ones, then the rest), which is the order of the
    /// first 256 ids in CLIP's vocabulary.
    static let openCLIPOrder: [UInt8] = {
        let printable = Array(33...126) + Array(161...172) + Array(174...255)
        return (printable + (0..<256).filter { !printable.contains($0) }).map(UInt8.init)
    }()

    static let scalarToByte: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (byte, scalar) in byteToScalar.enumerated() { map[scalar] = UInt8(byte) }
        return map
    }()

    /// A token spelled in byte-level characters back to its bytes; nil if a character is not in the table.
    static func bytes(ofToken token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = scalarToByte[scalar] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// tokenizers' `ByteLevel` decoder: each token becomes its bytes (a token with a character outside the table
    /// keeps its own UTF-8), all bytes are joined and read as UTF-8 with U+FFFD for invalid sequences
    /// (`String::from_utf8_lossy`, whose maximal-subpart replacement Swift's decoding repairs the same way).
    static func decode(_ tokens: [String]) -> String {
        var bytes: [UInt8] = []
        for token in tokens {
            if let tokenBytes = Self.bytes(ofToken: token) {
                bytes += tokenBytes
            } else {
                bytes += Array(token.utf8)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
