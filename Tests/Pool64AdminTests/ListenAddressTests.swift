import Foundation
import NIOCore
import Testing

@testable import Pool64Admin
import Pool64Resolver

@Suite("Listen addresses and tokens")
struct ListenAddressTests {
    @Test(
        "valid forms",
        arguments: [
            ("[::]:9090", "::", 9090, true), ("[::1]:0", "::1", 0, false), ("127.0.0.1:9090", "127.0.0.1", 9090, false),
            ("*:9090", "::", 9090, true), (":9090", "::", 9090, true), ("localhost:1", "127.0.0.1", 1, false),
            ("0.0.0.0:9090", "0.0.0.0", 9090, false), ("[0::0]:5", "0::0", 5, true),
        ])
    func valid(text: String, host: String, port: Int, wildcard: Bool) throws {
        let address = try ListenAddress.admin(text)
        #expect(address.host == host)
        #expect(address.port == port)
        #expect(address.isIPv6Wildcard == wildcard)
    }

    @Test(
        "invalid forms name the address",
        arguments: ["::1:9090", "[::1]", "[::1]:x", "db.example:9090", "1.2.3.4:70000", "9090"])
    func invalid(text: String) {
        let error = #expect(throws: AdminServerError.self) { try ListenAddress.admin(text) }
        #expect(error?.code == .invalidAddress)
        #expect(error?.description.contains(text) == true)
    }

    @Test("rendering brackets IPv6")
    func rendering() throws {
        #expect(ListenAddress(host: "::", port: 9090).description == "[::]:9090")
        #expect(ListenAddress(host: "127.0.0.1", port: 9090).description == "127.0.0.1:9090")
    }

    @Test("bearer token check")
    func bearer() {
        let token = BearerToken("abc")
        #expect(token.accepts(authorization: "Bearer abc"))
        #expect(token.accepts(authorization: "BEARER abc "))
        #expect(!token.accepts(authorization: "Bearer abcd"))
        #expect(!token.accepts(authorization: "Bearer ab"))
        #expect(!token.accepts(authorization: "Bearer ABC"))
        #expect(!token.accepts(authorization: "Basic abc"))
        #expect(!token.accepts(authorization: "Bearer "))
        #expect(!token.accepts(authorization: nil))
        #expect(BearerToken.constantTimeEqual([], []))
        #expect(!BearerToken.constantTimeEqual([1], [1, 0]))
    }

    @Test("an empty configured token means no token")
    func emptyToken() {
        #expect(AdminServer.Configuration(bearerToken: "").bearerToken == nil)
    }

    @Test("only [::] falls back to 0.0.0.0, and only when the kernel lacks IPv6")
    func ipv4Fallback() throws {
        let wildcard = try ListenAddress(parsing: "[::]:9090")
        let loopback = try ListenAddress(parsing: "[::1]:9090")
        let noFamily = IOError(errnoCode: EAFNOSUPPORT, reason: "socket")
        let noAddress = IOError(errnoCode: EADDRNOTAVAIL, reason: "bind")
        let inUse = IOError(errnoCode: EADDRINUSE, reason: "bind")
        #expect(AdminServer.shouldFallBackToIPv4(wildcard, after: noFamily))
        #expect(AdminServer.shouldFallBackToIPv4(wildcard, after: noAddress))
        #expect(!AdminServer.shouldFallBackToIPv4(wildcard, after: inUse))
        #expect(!AdminServer.shouldFallBackToIPv4(loopback, after: noFamily))
    }
}
