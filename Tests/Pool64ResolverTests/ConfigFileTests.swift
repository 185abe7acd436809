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

    @Test func kubernetesPodResolvConf() {
        let config = ResolvConf.parse("""
            search prod.svc.cluster.local svc.cluster.local cluster.local
            nameserver 10.96.0.10
            options ndots:5
            """)
        #expect(config.nameservers == [DNSServer(address: .v4(IPv4Address(10, 96, 0, 10)))])
        #expect(config.searchList.domains == ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local"])
        #expect(config.searchList.ndots == 5)
        #expect(config.timeoutMilliseconds == 5_000)
        #expect(config.attempts == 2)
        #expect(config.rotate == false)
    }

    @Test func resolvConfCommentsGarbageAndOptionVariants() {
        let config = ResolvConf.parse("""
            ; written by a DHCP client
            # another comment
            search first.example
            search Second.Example. third.example ; trailing comment
            nameserver fd64:1::53
            garbage without meaning
            nameserver
            options ndots:5 timeout:1 attempts:3
            options rotate edns0 no-tld-query ndots:oops timeout: attempts:-
            sortlist 130.155.160.0/255.255.240.0
            \r
            """)
        #expect(config.searchList.domains == ["second.example", "third.example"])
        #expect(config.searchList.ndots == 5)
        #expect(config.searchList.noTLDQuery)
        #expect(config.timeoutMilliseconds == 1_000)
        #expect(config.attempts == 3)
        #expect(config.rotate)
        #expect(config.nameservers == [DNSServer(address: .v6(IPv6Address("fd64:1::53")!))])
    }

    @Test func lastOfSearchAndDomainWins() {
        #expect(ResolvConf.parse("search a.test b.test\ndomain c.test d.test\n").searchList.domains == ["c.test"])
        #expect(ResolvConf.parse("domain c.test\nsearch a.test b.test\n").searchList.domains == ["a.test", "b.test"])
        #expect(ResolvConf.parse("search a.test\nsearch\n").searchList.domains == [])
        #expect(ResolvConf.parse("options ndots:99\n").searchList.ndots == 15)
        #expect(ResolvConf.parse("options ndots:0\n").searchList.ndots == 0)
    }

    @Test func moreThanThreeNameserversKeepsTheFirstThree() {
        let config = ResolvConf.parse((1...5).map { "nameserver 192.0.2.\($0)" }.joined(separator: "\n"))
        #expect(config.nameservers.map(\.description) == ["192.0.2.1:53", "192.0.2.2:53", "192.0.2.3:53"])
    }

    @Test func environmentOverridesAndHostnameFallback() {
        let file = "search file.example\noptions ndots:2 attempts:4\n"
        let overridden = ResolvConf.parse(
            file, environment: ["LOCALDOMAIN": "env-a.example  env-b.example", "RES_OPTIONS": "ndots:3 timeout:2"])
        #expect(overridden.searchList.domains == ["env-a.example", "env-b.example"])
        #expect(overridden.searchList.ndots == 3)
        #expect(overridden.timeoutMilliseconds == 2_000)
        #expect(overridden.attempts == 4)
        #expect(ResolvConf.parse(file, environment: ["LOCALDOMAIN": ""]).searchList.domains == [])
        #expect(ResolvConf.parse("", hostname: "pod-1.corp.example").searchList.domains == ["corp.example"])
        #expect(ResolvConf.parse("", hostname: "pod-1").searchList.domains == [])
        #expect(
            ResolvConf.parse("domain d.example\n", hostname: "pod-1.corp.example").searchList.domains == ["d.example"])
        #expect(ResolvConf.parse("", environment: ["LOCALDOMAIN": "l.example"], hostname: "h.corp.example")
            .searchList.domains == ["l.example"])
    }

    @Test func hostsMalformedLinesZonesAndLineEndings() {
        let hosts = HostsFile.parse(
            "10.0.0.1\tdb.internal\tdb  # the primary\r\n"
                + "10.0.0.2 db.internal\r\n"
                + "300.1.1.1 broken.example\n"
                + "10.0.0.3\n"
                + "fe80::1%eth0 zoned.example\n"
                + "2001:db8::5 bad_name? good.example\n"
                + "#2001:db8::6 commented.example\n"
                + "\u{0}\u{1} nonsense\n")
        #expect(hosts.lookup("db.internal")?.ipv4 == [IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 2)])
        #expect(hosts.lookup("DB")?.ipv4 == [IPv4Address(10, 0, 0, 1)])
        #expect(hosts.lookup("db")?.ipv6 == [])
        #expect(hosts.lookup("broken.example") == nil)
        #expect(hosts.lookup("zoned.example") == nil)
        #expect(hosts.lookup("good.example")?.ipv6 == [IPv6Address("2001:db8::5")!])
        #expect(hosts.lookup("commented.example") == nil)
        #expect(hosts.lookup("nonsense") == nil)
        #expect(hosts.entries.count == 3)
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
