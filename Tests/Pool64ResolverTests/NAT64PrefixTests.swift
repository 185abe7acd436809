import Testing
@testable import Pool64Resolver

@Suite("NAT64 prefixes (RFC 6052) and discovery (RFC 7050)")
struct NAT64PrefixTests {
    static let ipv4 = IPv4Address(192, 0, 2, 33)

    // RFC 6052 §2.4, the table of 192.0.2.33 embedded at every prefix length.
    @Test("RFC 6052 §2.4 examples", arguments: [
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
        ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
    ])
    func rfc6052Examples(prefixText: String, expected: String) throws {
        let prefix = try NAT64Prefix(prefixText)
        let synthesized = prefix.synthesize(Self.ipv4)
        #expect(synthesized == IPv6Address(expected))
        #expect(prefix.extract(synthesized) == Self.ipv4)
        #expect(prefix.description == prefixText)
    }

    @Test("extract inverts synthesize", arguments: NAT64Prefix.validLengths)
    func extractInvertsSynthesize(length: Int) throws {
        let prefix = try NAT64Prefix(address: #require(IPv6Address("2001:db8::")), length: length)
        for ipv4 in [IPv4Address(0, 0, 0, 0), IPv4Address(255, 255, 255, 255), IPv4Address(100, 64, 2, 10),
                     IPv4Address(1, 2, 3, 4)] {
            #expect(prefix.extract(prefix.synthesize(ipv4)) == ipv4)
        }
        #expect(prefix.extract(IPv6Address("2001:db9::1")!) == nil)
    }

    @Test func extractRejectsNonZeroUOctet() throws {
        let prefix = try NAT64Prefix("2001:db8::/32")
        #expect(prefix.extract(IPv6Address("2001:db8:c000:221:ff00::")!) == nil)
    }

    @Test("bad lengths are refused", arguments: [0, 24, 33, 63, 80, 128])
    func badLengths(length: Int) {
        #expect(throws: NAT64PrefixError.invalidLength(length)) {
            try NAT64Prefix(address: IPv6Address("2001:db8::")!, length: length)
        }
    }

    @Test func bits64To71MustBeZero() {
        #expect(throws: NAT64PrefixError.reservedBitsSet("2001:db8:0:0:100::/96")) {
            try NAT64Prefix("2001:db8:0:0:0100::/96")
        }
        #expect(throws: NAT64PrefixError.reservedBitsSet("2001:db8:0:0:ff00::/96")) {
            try NAT64Prefix("2001:db8:0:0:ff00::/96")
        }
        #expect((try? NAT64Prefix("2001:db8:0:0:0001::/96")) != nil)  // bit 79: outside 64–71
    }

    @Test func hostBitsAndMalformedTextAreRefused() {
        #expect(throws: NAT64PrefixError.hostBitsSet("2001:db8::1/32")) { try NAT64Prefix("2001:db8::1/32") }
        #expect(throws: NAT64PrefixError.malformed("64:ff9b::")) { try NAT64Prefix("64:ff9b::") }
        #expect(throws: NAT64PrefixError.malformed("64:ff9b::/x")) { try NAT64Prefix("64:ff9b::/x") }
        #expect(throws: NAT64PrefixError.malformed("192.0.2.0/24")) { try NAT64Prefix("192.0.2.0/24") }
    }

    @Test func wellKnownPrefix() throws {
        #expect(try NAT64Prefix("64:ff9b::/96").isWellKnown)
        #expect(try !NAT64Prefix("64:ff9b:1::/48").isWellKnown)
        #expect(NAT64Prefix.wellKnown.description == "64:ff9b::/96")
    }

    @Test("RFC 6052 §3.1: the well-known prefix cannot reach non-global IPv4", arguments: [
        ("10.1.2.3", true), ("172.16.0.1", true), ("172.31.255.255", true), ("192.168.1.1", true),
        ("127.0.0.1", true), ("169.254.1.1", true), ("192.0.2.33", true), ("198.18.0.1", true),
        ("198.51.100.7", true), ("203.0.113.9", true), ("224.0.0.1", true), ("0.1.2.3", true),
        ("100.64.2.10", false), ("172.32.0.1", false), ("8.8.8.8", false), ("192.0.3.1", false),
    ])
    func wellKnownReach(ipv4Text: String, unreachable: Bool) throws {
        let ipv4 = try #require(IPv4Address(ipv4Text))
        #expect(NAT64Prefix.wellKnownPrefixCannotReach(ipv4) == unreachable)
        #expect(NAT64Prefix.wellKnown.canReach(ipv4) == !unreachable)
        #expect(try NAT64Prefix("2001:db8:64::/96").canReach(ipv4))
    }

    @Test func settingParses() throws {
        #expect(try NAT64Setting(parsing: "64:ff9b::/96") == .prefix(.wellKnown))
        #expect(try NAT64Setting(parsing: " auto ") == .auto)
        #expect(try NAT64Setting(parsing: "OFF") == .off)
        #expect(try NAT64Setting(parsing: "2001:db8:122::/48") == .prefix(NAT64Prefix("2001:db8:122::/48")))
        #expect(throws: NAT64PrefixError.self) { try NAT64Setting(parsing: "on") }
        #expect(throws: NAT64PrefixError.invalidLength(120)) { try NAT64Setting(parsing: "64:ff9b::/120") }
        #expect(NAT64Setting.default.description == "64:ff9b::/96")
        #expect(NAT64Setting.auto.description == "auto")
    }

    @Test func discoveryFindsA96Prefix() throws {
        let answers = [IPv6Address("64:ff9b::192.0.0.170")!, IPv6Address("64:ff9b::192.0.0.171")!]
        #expect(NAT64PrefixDiscovery.prefixes(fromAAAA: answers) == [.wellKnown])
    }

    @Test func discoveryFindsA64Prefix() throws {
        let prefix = try NAT64Prefix("2001:db8:122:344::/64")
        let answers = NAT64PrefixDiscovery.wellKnownIPv4Addresses.map(prefix.synthesize)
        #expect(NAT64PrefixDiscovery.prefixes(fromAAAA: answers) == [prefix])
        #expect(NAT64PrefixDiscovery.prefixes(fromAAAA: [answers[1]]) == [prefix])
    }

    @Test("discovery at every length", arguments: NAT64Prefix.validLengths)
    func discoveryEveryLength(length: Int) throws {
        let prefix = try NAT64Prefix(address: #require(IPv6Address("2001:db8:122:300::")).masked(length), length: length)
        let answers = NAT64PrefixDiscovery.wellKnownIPv4Addresses.map(prefix.synthesize)
        #expect(NAT64PrefixDiscovery.prefixes(fromAAAA: answers) == [prefix])
    }

    @Test func discoveryReportsSeveralPrefixesAndIgnoresOthers() throws {
        let second = try NAT64Prefix("2001:db8:64::/96")
        let answers = [
            IPv6Address("2001:db8::1")!,  // not synthesized
            IPv6Address("64:ff9b::192.0.0.170")!, second.synthesize(IPv4Address(192, 0, 0, 171)),
            IPv6Address("64:ff9b::192.0.0.171")!,
        ]
        #expect(NAT64PrefixDiscovery.prefixes(fromAAAA: answers) == [.wellKnown, second])
        #expect(NAT64PrefixDiscovery.prefixes(fromAAAA: [IPv6Address("2001:db8::c000:aa")!]).isEmpty == false)
        #expect(NAT64PrefixDiscovery.prefixes(fromAAAA: []).isEmpty)
    }
}

extension IPv6Address {
    func masked(_ length: Int) -> IPv6Address {
        var bytes = self.bytes
        for bit in length..<128 { bytes[bit / 8] &= ~(UInt8(0x80) >> UInt8(bit % 8)) }
        return IPv6Address(bytes: bytes)!
    }
}
