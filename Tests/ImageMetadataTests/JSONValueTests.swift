@testable import ImageMetadata
import Testing

/// The readers' JSON parser: RFC 8259 values, numbers as written, keys in file order, bounded nesting.
@Suite struct JSONValueTests {
    @Test func numbersKeepTheirText() throws {
        let v = try #require(JSONValue.parse(#"[0.8700000000000001, 18446744073709551615, 1e400, -0.0, 20.0, "7"]"#)?.array)
        #expect(v[0].double == 0.8700000000000001 && v[0].text == "0.8700000000000001")
        #expect(v[1].seed == .max && v[1].int == nil && v[2].double == nil && v[3].double == 0 && v[4].int == 20 && v[5].int == 7)
    }

    @Test func stringsAndOrder() throws {
        let v = try #require(JSONValue.parse(#" {"b": "x\"\\\/\n\u00e9\ud83c\udfa8\ud800", "a": [true, false, null, NaN, -Infinity], "b": 2} "#))
        #expect(v.object?.map(\.0) == ["b", "a", "b"] && v["b"]?.string == "x\"\\/\né🎨\u{FFFD}")
        #expect(v["a"]?.array == [.bool(true), .bool(false), .null, .null, .null])
    }

    @Test func malformedIsNil() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "01x", "1.", "-", "\"\\u12\"", "[1] 2", "{\"a\": tru}", "\"open"] {
            #expect(JSONValue.parse(text) == nil, "\(text)")
        }
        #expect(JSONValue.parse(String(repeating: "[", count: JSONValue.depthLimit - 1) + String(repeating: "]", count: JSONValue.depthLimit - 1)) != nil)
        #expect(JSONValue.parse(String(repeating: "[", count: JSONValue.depthLimit + 1) + String(repeating: "]", count: JSONValue.depthLimit + 1)) == nil)
    }
}
