import Testing
@testable import ComfyUI

@Suite struct ServerAddressTests {
    @Test func addressesAsUsersWriteThem() throws {
        #expect(try ServerAddress(parsing: "comfyui://127.0.0.1:8188") == ServerAddress(host: "127.0.0.1", port: 8188))
        #expect(try ServerAddress(parsing: "comfyui://gpu-box") == ServerAddress(host: "gpu-box", port: 8188))
        #expect(try ServerAddress(parsing: "comfyuis://example.org") == ServerAddress(host: "example.org", port: 443, tls: true))
        #expect(try ServerAddress(parsing: "https://example.org:8443/comfy/") == ServerAddress(host: "example.org", port: 8443, tls: true, prefix: "/comfy"))
        #expect(try ServerAddress(parsing: "comfyui://[::1]:9000") == ServerAddress(host: "::1", port: 9000))
        #expect(try ServerAddress(parsing: "comfyui://[::1]:9000").description == "comfyui://[::1]:9000")
        let two = try ServerAddress.list("comfyui://a:1, comfyuis://b:2")
        #expect(two.map(\.name) == ["a:1", "b:2"] && two.map(\.tls) == [false, true])
    }

    @Test(arguments: [
        ("127.0.0.1:8188", "is not a server address"),
        ("ftp://host:1", "unknown scheme 'ftp'"),
        ("comfyui://host:0", "port '0' is not a number from 1 to 65535"),
        ("comfyui://host:99999", "port '99999'"),
        ("comfyui://host:http", "port 'http'"),
        ("comfyui://user:pass@host:1", "put credentials in the config"),
        ("comfyui://:8188", "is not a host name"),
        ("comfyui://ho st:1", "is not a host name"),
        ("comfyui://host\n:1", "is not a host name"),
        ("comfyui://[::1:1", "unclosed '['"),
        ("comfyui://host:1/a b", "characters a URL path cannot carry"),
    ])
    func badAddressesAreOneLine(_ text: String, _ expected: String) {
        #expect {
            try ServerAddress(parsing: text)
        } throws: { error in
            let message = "\(error)"
            return message.contains(expected) && !message.contains("\n")
        }
    }

    @Test func anEmptyEntryInAListIsRefused() {
        #expect(throws: RemoteError("backend list 'comfyui://a:1,,comfyui://b:2' has an empty entry")) {
            try ServerAddress.list("comfyui://a:1,,comfyui://b:2")
        }
    }

    /// Headers (a token) never appear in what is printed.
    @Test func theTokenIsNeverInTheDescription() throws {
        var address = try ServerAddress(parsing: "comfyuis://example.org")
        address.headers = [("Authorization", "Bearer secret-token")]
        #expect(!"\(address)".contains("secret") && !address.name.contains("secret"))
    }
}
