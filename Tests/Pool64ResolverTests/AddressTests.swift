import Testing
@testable import Pool64Resolver

@Suite("IPv4 and IPv6 addresses")
struct AddressTests {
    @Test("strict dotted quads parse", arguments: ["0.0.0.0", "192.0.2.33", "255.255.255.255", "100.64.2.10"])
    func ipv4Parses(text: String) {
        #expect(IPv4Address(text)?.description == text)
    }

    @Test("loose IPv4 forms are refused", arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "010.0.0.1", "1..2.3", "1.2.3.", "0x7f.0.0.1", "10.1", " 1.2.3.4",
        "1.2.3.4 ", "1234.1.1.1",
    ])
    func ipv4Refused(text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test("IPv6 text becomes RFC 5952 canonical", arguments: [
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // first of two equal runs (§4.2.3)
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a single zero group is not shortened (§4.2.2)
        ("2001:db8:0:0:0:1:0:0", "2001:db8::1:0:0"),  // the longest run wins (§4.2.3)
        ("0:0:0:0:0:0:0:0", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80:0:0:0:0:0:0:1", "fe80::1"),
        ("[2001:db8::5]", "2001:db8::5"),
        ("::ffff:192.0.2.33", "::ffff:192.0.2.33"),
        ("::ffff:c000:221", "::ffff:192.0.2.33"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("2001:db8:122:344::192.0.2.33", "2001:db8:122:344::c000:221"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
    ])
    func ipv6Canonical(input: String, canonical: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == canonical)
        #expect(IPv6Address(canonical) == address)
    }

    @Test("malformed IPv6 is refused", arguments: [
        "", ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", "fe80::1%eth0", "[::1", "::1]",
        "1:2:3:4:5:6:7", "::192.0.2.33:1", "1.2.3.4::", ":1::", "1:2:3:4:5:6:7:8::", "::ffff:1.2.3",
    ])
    func ipv6Refused(text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func bytesRoundTrip() throws {
        let address = try #require(IPv6Address("2001:db8:1:2:3:4:5:6"))
        #expect(IPv6Address(bytes: address.bytes) == address)
        #expect(IPv6Address(words: address.words) == address)
        #expect(address.words == [0x2001, 0xdb8, 1, 2, 3, 4, 5, 6])
        #expect(IPv4Address(bytes: [192, 0, 2, 33]) == IPv4Address(192, 0, 2, 33))
        #expect(IPv4Address(bytes: [1, 2, 3]) == nil)
    }

    @Test func mappedAddressesUnmapToIPv4() throws {
        let mapped = try #require(IPv6Address("::ffff:100.64.2.10"))
        #expect(mapped.isIPv4Mapped)
        #expect(mapped.mappedIPv4 == IPv4Address(100, 64, 2, 10))
        #expect(IPAddress.v6(mapped).unmapped == .v4(IPv4Address(100, 64, 2, 10)))
        #expect(IPAddress.v6(mapped).unmapped.description == "100.64.2.10")
        #expect(IPv6Address(mapping: IPv4Address(100, 64, 2, 10)) == mapped)
        let native = try #require(IPv6Address("2001:db8::1"))
        #expect(!native.isIPv4Mapped)
        #expect(IPAddress.v6(native).unmapped == .v6(native))
    }

    @Test func ipAddressParsesEitherFamily() {
        #expect(IPAddress("192.0.2.1") == .v4(IPv4Address(192, 0, 2, 1)))
        #expect(IPAddress("[::1]") == .v6(IPv6Address(high: 0, low: 1)))
        #expect(IPAddress("db.example.com") == nil)
        #expect(IPAddress("::1")?.bracketedDescription == "[::1]")
    }
}
