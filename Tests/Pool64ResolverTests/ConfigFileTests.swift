import Testing
@testable import Pool64Resolver

@Suite("resolv.conf and /etc/hosts parsing")
struct ConfigFileTests {
    @Test func resolvConfNameserversAndOptions() {
        let config = ResolvConf.parse("""
            # generated
            search example.com
            nameserver 192.0.2.53
            nameserver 2001:db8::53 # trailing comment
            nameserver fe80::1%eth0
            nameserver not-an-address
            options ndots:2 timeout:3 attempts:4
            nameserver 198.51.100.53
            nameserver 203.0.113.53
            """)
        #expect(config.nameservers == [
            DNSServer(address: .v4(IPv4Address(192, 0, 2, 53))),
            DNSServer(address: .v6(IPv6Address("2001:db8::53")!)),
            DNSServer(address: .v4(IPv4Address(198, 51, 100, 53))),
        ])
        #expect(config.timeoutMilliseconds == 3_000)
        #expect(config.attempts == 4)
    }

    @Test func resolvConfDefaultsAndBounds() {
        let empty = ResolvConf.parse("")
        #expect(empty.nameservers == ResolvConf.defaultNameservers)
        #expect(empty.timeoutMilliseconds == 5_000)
        #expect(empty.attempts == 2)
        let bounded = ResolvConf.parse("options timeout:99 attempts:0\n")
        #expect(bounded.timeoutMilliseconds == 30_000)
        #expect(bounded.attempts == 1)
    }

    @Test func hostsBothFamiliesAliasesAndComments() {
        let hosts = HostsFile.parse("""
            127.0.0.1\tlocalhost
            ::1 localhost ip6-localhost  # loopback
            # 10.0.0.1 commented.example
            2001:db8::10 db.example db
            100.64.2.10 DB.Example.
            fe80::1%eth0 linklocal
            garbage line
            ::ffff:100.64.2.11 mapped.example
            """)
        #expect(hosts.lookup("localhost")?.ipv4 == [IPv4Address(127, 0, 0, 1)])
        #expect(hosts.lookup("localhost")?.ipv6 == [IPv6Address(high: 0, low: 1)])
        #expect(hosts.lookup("ip6-localhost")?.ipv6 == [IPv6Address(high: 0, low: 1)])
        #expect(hosts.lookup("db.example.")?.ipv6 == [IPv6Address("2001:db8::10")!])
        #expect(hosts.lookup("DB.EXAMPLE")?.ipv4 == [IPv4Address(100, 64, 2, 10)])
        #expect(hosts.lookup("db")?.ipv4 == [])
        #expect(hosts.lookup("commented.example") == nil)
        #expect(hosts.lookup("linklocal") == nil)
        #expect(hosts.lookup("mapped.example")?.ipv4 == [IPv4Address(100, 64, 2, 11)])
    }

    @Test func nameNormalization() {
        #expect(DNSMessage.normalize("DB.Example.COM.") == "db.example.com")
        #expect(DNSMessage.normalize("a..b") == nil)
        #expect(DNSMessage.normalize("") == nil)
        #expect(DNSMessage.normalize(String(repeating: "a", count: 64) + ".com") == nil)
        #expect(DNSMessage.normalize("bad name") == nil)
        #expect(DNSMessage.normalize("_pg._tcp.example") == "_pg._tcp.example")
    }
}
