import Testing
@testable import Pool64Resolver

@Suite("Candidate ordering by policy")
struct CandidatePlannerTests {
    static let v6a = IPv6Address("2001:db8::10")!
    static let v6b = IPv6Address("2001:db8::11")!
    static let v4a = IPv4Address(100, 64, 2, 10)
    static let v4b = IPv4Address(100, 64, 2, 11)
    static let privateV4 = IPv4Address(10, 0, 0, 5)
    static let nsp = try! NAT64Prefix("2001:db8:64::/96")

    static func native(_ address: IPv6Address) -> Candidate { Candidate(address: .v6(address), route: .ipv6) }
    static func nat64(_ address: IPv4Address, _ prefix: NAT64Prefix = .wellKnown) -> Candidate {
        Candidate(address: .v6(prefix.synthesize(address)), route: .nat64)
    }
    static func plain(_ address: IPv4Address) -> Candidate { Candidate(address: .v4(address), route: .ipv4) }

    func order(
        aaaa: [IPv6Address] = [], a: [IPv4Address] = [], literal: HostLiteral = .none, _ policy: IPPolicy,
        nat64: NAT64Prefix? = .wellKnown, ipv4: Bool = false
    ) -> [Candidate] {
        CandidatePlanner.order(aaaa: aaaa, a: a, literal: literal, policy: policy, nat64: nat64, hasIPv4Connectivity: ipv4)
    }

    @Test func policiesParseFromConfigText() {
        #expect(IPPolicy(rawValue: "ipv6-first") == .ipv6First)
        #expect(IPPolicy(rawValue: "ipv4") == .ipv4)
        #expect(IPPolicy(rawValue: "ipv6-only") == .ipv6Only)
        #expect(Route.allCases.map(\.rawValue) == ["ipv6", "nat64", "ipv4"])
    }

    // MARK: ipv6-first

    @Test func ipv6FirstAAAAOnly() {
        #expect(order(aaaa: [Self.v6a, Self.v6b], .ipv6First) == [Self.native(Self.v6a), Self.native(Self.v6b)])
    }

    @Test func ipv6FirstAOnlySynthesizes() {
        #expect(order(a: [Self.v4a], .ipv6First) == [Self.nat64(Self.v4a)])
        // With NAT64 available, plain IPv4 is not tried even where the host has IPv4.
        #expect(order(a: [Self.v4a], .ipv6First, ipv4: true) == [Self.nat64(Self.v4a)])
    }

    @Test func ipv6FirstBothPutsNativeFirstThenNAT64() {
        #expect(order(aaaa: [Self.v6a], a: [Self.v4a, Self.v4b], .ipv6First, nat64: Self.nsp)
            == [Self.native(Self.v6a), Self.nat64(Self.v4a, Self.nsp), Self.nat64(Self.v4b, Self.nsp)])
    }

    @Test func ipv6FirstIPv4LiteralIsSynthesized() {
        #expect(order(a: [Self.v4a], literal: .ipv4, .ipv6First) == [Self.nat64(Self.v4a)])
    }

    @Test func ipv6FirstIPv6Literal() {
        #expect(order(aaaa: [Self.v6a], literal: .ipv6, .ipv6First, ipv4: true) == [Self.native(Self.v6a)])
    }

    @Test func ipv6FirstWithoutNAT64FallsBackToIPv4OnlyWithConnectivity() {
        #expect(order(a: [Self.v4a], .ipv6First, nat64: nil, ipv4: false).isEmpty)
        #expect(order(a: [Self.v4a], .ipv6First, nat64: nil, ipv4: true) == [Self.plain(Self.v4a)])
        #expect(order(a: [Self.v4a], literal: .ipv4, .ipv6First, nat64: nil, ipv4: true) == [Self.plain(Self.v4a)])
    }

    @Test func ipv6FirstInterleavesWithPlainIPv4() {
        // RFC 8305 §4: alternate families, IPv6 first.
        #expect(order(aaaa: [Self.v6a, Self.v6b], a: [Self.v4a, Self.v4b], .ipv6First, nat64: nil, ipv4: true)
            == [Self.native(Self.v6a), Self.plain(Self.v4a), Self.native(Self.v6b), Self.plain(Self.v4b)])
    }

    @Test func wellKnownPrefixSkipsPrivateIPv4() {
        #expect(order(a: [Self.privateV4], .ipv6First).isEmpty)
        #expect(order(a: [Self.privateV4], .ipv6First, ipv4: true) == [Self.plain(Self.privateV4)])
        #expect(order(a: [Self.privateV4], .ipv6First, nat64: Self.nsp) == [Self.nat64(Self.privateV4, Self.nsp)])
    }

    @Test func dns64AnswersAreRoutedAsNAT64AndMappedAsIPv4() {
        let synthesizedByDNS64 = NAT64Prefix.wellKnown.synthesize(Self.v4a)
        #expect(order(aaaa: [synthesizedByDNS64], a: [Self.v4a], .ipv6First) == [Self.nat64(Self.v4a)])
        #expect(order(aaaa: [IPv6Address(mapping: Self.v4a)], .ipv6First, nat64: nil, ipv4: true)
            == [Self.plain(Self.v4a)])
    }

    // MARK: ipv4 (legacy)

    @Test func ipv4PolicyAOnly() {
        #expect(order(a: [Self.v4a, Self.v4b], .ipv4) == [Self.plain(Self.v4a), Self.plain(Self.v4b)])
    }

    @Test func ipv4PolicyAAAAOnly() {
        #expect(order(aaaa: [Self.v6a], .ipv4) == [Self.native(Self.v6a)])
    }

    @Test func ipv4PolicyBothPutsIPv4First() {
        #expect(order(aaaa: [Self.v6a, Self.v6b], a: [Self.v4a], .ipv4, ipv4: true)
            == [Self.plain(Self.v4a), Self.native(Self.v6a), Self.native(Self.v6b)])
    }

    @Test func ipv4PolicyLiterals() {
        #expect(order(a: [Self.v4a], literal: .ipv4, .ipv4) == [Self.plain(Self.v4a)])
        #expect(order(aaaa: [Self.v6a], literal: .ipv6, .ipv4) == [Self.native(Self.v6a)])
    }

    @Test func ipv4PolicyNeverSynthesizes() {
        #expect(order(a: [Self.v4a], .ipv4, nat64: Self.nsp, ipv4: false) == [Self.plain(Self.v4a)])
    }

    // MARK: ipv6-only

    @Test func ipv6OnlyAAAAOnly() {
        #expect(order(aaaa: [Self.v6a], .ipv6Only, ipv4: true) == [Self.native(Self.v6a)])
    }

    @Test func ipv6OnlyAOnly() {
        #expect(order(a: [Self.v4a], .ipv6Only, ipv4: true) == [Self.nat64(Self.v4a)])
        #expect(order(a: [Self.v4a], .ipv6Only, nat64: nil, ipv4: true).isEmpty)
    }

    @Test func ipv6OnlyBoth() {
        #expect(order(aaaa: [Self.v6a], a: [Self.v4a], .ipv6Only, ipv4: true)
            == [Self.native(Self.v6a), Self.nat64(Self.v4a)])
        #expect(order(aaaa: [Self.v6a], a: [Self.v4a], .ipv6Only, nat64: nil, ipv4: true) == [Self.native(Self.v6a)])
    }

    @Test func ipv6OnlyLiterals() {
        #expect(order(a: [Self.v4a], literal: .ipv4, .ipv6Only, ipv4: true) == [Self.nat64(Self.v4a)])
        #expect(order(a: [Self.v4a], literal: .ipv4, .ipv6Only, nat64: nil, ipv4: true).isEmpty)
        #expect(order(aaaa: [Self.v6a], literal: .ipv6, .ipv6Only) == [Self.native(Self.v6a)])
    }

    @Test func duplicatesAreDropped() {
        #expect(order(aaaa: [Self.v6a, Self.v6a], a: [Self.v4a, Self.v4a], .ipv6First)
            == [Self.native(Self.v6a), Self.nat64(Self.v4a)])
    }

    @Test func connectivityProbeSendsNothingAndAnswers() {
        // Loopback always routes; this only checks the probe runs without error.
        let loopback = HostConnectivity.routes(to: .v4(IPv4Address(127, 0, 0, 1)))
        #expect(loopback == false)  // a loopback source does not count as connectivity
        _ = HostConnectivity.probe()
    }
}
