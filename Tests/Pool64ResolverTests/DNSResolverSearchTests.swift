import Foundation
import Testing
@testable import Pool64Resolver

@Suite("Search list, nameserver failover and /etc/hosts against fake servers")
struct DNSResolverSearchTests {
    static let kubernetesResolvConf = """
        search prod.svc.cluster.local svc.cluster.local cluster.local
        nameserver 10.96.0.10
        options ndots:5
        """

    /// A cluster DNS: the `db` service in namespace `prod` (A only, as ClusterIP services are
    /// on IPv4 clusters), an IPv6 service, and NXDOMAIN for everything else.
    static func cluster(_ name: String, _ type: UInt16) -> FakeDNSServer.Reply {
        switch (name, type) {
        case ("db.prod.svc.cluster.local", 1): return .init(answers: [.a(name, "10.96.3.7", ttl: 30)])
        case ("db.prod.svc.cluster.local", _): return .init(soaMinimum: 30)
        case ("v6.prod.svc.cluster.local", 28): return .init(answers: [.aaaa(name, "fd00:10::7", ttl: 30)])
        case ("v6.prod.svc.cluster.local", _): return .init(soaMinimum: 30)
        case ("external.example.com", 28): return .init(answers: [.aaaa(name, "2001:db8::99", ttl: 60)])
        case ("external.example.com", _): return .init()
        case ("ipv4only.arpa", 28):
            return .init(answers: [.aaaa(name, "64:ff9b::192.0.0.170"), .aaaa(name, "64:ff9b::192.0.0.171")])
        case ("ipv4only.arpa", _): return .init(answers: [.a(name, "192.0.0.170"), .a(name, "192.0.0.171")])
        default: return .init(rcode: 3, soaMinimum: 30)
        }
    }

    /// A temporary file holding `text`, removed by the caller.
    static func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pool64-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A resolver reading `resolvConf` (for search, ndots, options) but sending to `servers`
    /// (resolv.conf has no port syntax, and the fake servers listen on ephemeral ports).
    static func resolver(
        resolvConf: String, servers: [DNSServer], hostsPath: String? = nil, timeoutMilliseconds: Int? = 300,
        attempts: Int? = 1
    ) -> DNSResolver {
        var options = DNSResolverOptions()
        options.resolvConfPath = resolvConf
        options.hostsPath = hostsPath
        options.nameservers = servers
        options.timeoutMilliseconds = timeoutMilliseconds
        options.attempts = attempts
        options.environment = [:]
        options.hostname = nil
        return DNSResolver(options: options)
    }

    /// The distinct names the server was asked, in first-asked order.
    static func names(_ server: FakeDNSServer) -> [String] {
        var names: [String] = []
        for query in server.received where !names.contains(query.name) { names.append(query.name) }
        return names
    }

    @Test func kubernetesShortServiceNameResolvesThroughTheSearchList() throws {
        let server = try FakeDNSServer(address: .v6(IPv6Address(high: 0, low: 1)), handler: Self.cluster)
        defer { server.stop() }
        let conf = try Self.file(Self.kubernetesResolvConf)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        let answer = try resolver.lookup("db.prod").get()
        #expect(answer.name == "db.prod")
        #expect(answer.fqdn == "db.prod.svc.cluster.local")
        #expect(answer.ipv4 == [IPv4Address(10, 96, 3, 7)])
        #expect(answer.ipv6.isEmpty)
        #expect(Self.names(server) == ["db.prod.prod.svc.cluster.local", "db.prod.svc.cluster.local"])
        #expect(resolver.counters.searchFallbacks == 1)
        // Cached under the name as given, recording which name answered.
        let count = server.received.count
        #expect(try resolver.lookup("DB.prod").get().source == .cache)
        #expect(server.received.count == count)
        let entry = try #require(resolver.cacheSnapshot().first)
        #expect(entry.name == "db.prod")
        #expect(entry.fqdn == "db.prod.svc.cluster.local")
        resolver.invalidate("db.prod")
        #expect(resolver.cacheSnapshot().isEmpty)
    }

    @Test func kubernetesFullServiceNameTriesTheSuffixesFirstThenAsIs() throws {
        let server = try FakeDNSServer(handler: Self.cluster)
        defer { server.stop() }
        let conf = try Self.file(Self.kubernetesResolvConf)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        let answer = try resolver.lookup("db.prod.svc.cluster.local").get()
        #expect(answer.fqdn == "db.prod.svc.cluster.local")
        #expect(Self.names(server) == [
            "db.prod.svc.cluster.local.prod.svc.cluster.local", "db.prod.svc.cluster.local.svc.cluster.local",
            "db.prod.svc.cluster.local.cluster.local", "db.prod.svc.cluster.local",
        ])
    }

    @Test func kubernetesAbsoluteNameGoesStraight() throws {
        let server = try FakeDNSServer(handler: Self.cluster)
        defer { server.stop() }
        let conf = try Self.file(Self.kubernetesResolvConf)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        let answer = try resolver.lookup("db.prod.svc.cluster.local.").get()
        #expect(answer.ipv4 == [IPv4Address(10, 96, 3, 7)])
        #expect(Self.names(server) == ["db.prod.svc.cluster.local"])
        #expect(server.received.count == 2)
        #expect(resolver.counters.searchFallbacks == 0)
        #expect(resolver.cacheSnapshot().map(\.name) == ["db.prod.svc.cluster.local."])
    }

    @Test func externalNameFallsThroughTheSuffixesToTheNameAsIs() throws {
        let server = try FakeDNSServer(handler: Self.cluster)
        defer { server.stop() }
        let conf = try Self.file(Self.kubernetesResolvConf)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        let answer = try resolver.lookup("external.example.com").get()
        #expect(answer.ipv6 == [IPv6Address("2001:db8::99")!])
        #expect(Self.names(server).last == "external.example.com")
        #expect(Self.names(server).count == 4)
        #expect(resolver.counters.searchFallbacks == 3)
    }

    @Test func nxdomainEverywhereIsOneCachedNegativeUnderTheNameAsGiven() throws {
        let server = try FakeDNSServer(handler: Self.cluster)
        defer { server.stop() }
        let conf = try Self.file(Self.kubernetesResolvConf)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        guard case .failure(let error) = resolver.lookup("missing") else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == .nameNotFound)
        #expect(error.name == "missing")
        #expect(error.detail.hasPrefix("tried missing.prod.svc.cluster.local, "))
        #expect(server.received.count == 8)
        #expect(resolver.lookup("missing").failureCode == .nameNotFound)
        #expect(server.received.count == 8)
        #expect(resolver.cacheSnapshot().map(\.name) == ["missing"])
        #expect(resolver.cacheSnapshot().first?.isNegative == true)
        #expect(resolver.counters.negativeAnswers == 1)
    }

    @Test func nodataAndServfailMoveOnToTheNextCandidate() throws {
        let server = try FakeDNSServer { name, type in
            switch name {
            case "db.nodata.test": return .init()
            case "db.broken.test": return .init(rcode: 2)
            case "db.good.test": return .init(answers: type == 1 ? [.a(name, "192.0.2.7")] : [])
            default: return .init(rcode: 3)
            }
        }
        defer { server.stop() }
        let conf = try Self.file("search nodata.test broken.test good.test\n")
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        let answer = try resolver.lookup("db").get()
        #expect(answer.fqdn == "db.good.test")
        #expect(Self.names(server) == ["db.nodata.test", "db.broken.test", "db.good.test"])
        #expect(resolver.cacheSnapshot().map(\.fqdn) == ["db.good.test"])
    }

    @Test func servfailAnywhereMakesTheFailureTemporaryAndUncached() throws {
        let server = try FakeDNSServer { name, _ in name == "db.broken.test" ? .init(rcode: 2) : .init(rcode: 3) }
        defer { server.stop() }
        let conf = try Self.file("search broken.test other.test\n")
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        #expect(resolver.lookup("db").failureCode == .serverFailure)
        #expect(Self.names(server) == ["db.broken.test", "db.other.test", "db"])
        #expect(resolver.cacheSnapshot().isEmpty)
    }

    @Test func timeoutStopsTheSearchButTheNameAsIsIsStillAsked() throws {
        let server = try FakeDNSServer { name, type in
            switch name {
            case "db.slow.test": return .init(drop: true)
            case "db": return .init(answers: type == 1 ? [.a(name, "192.0.2.8")] : [])
            default: return .init(rcode: 3)
            }
        }
        defer { server.stop() }
        let conf = try Self.file("search slow.test other.test\n")
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server], timeoutMilliseconds: 100)
        let answer = try resolver.lookup("db").get()
        #expect(answer.fqdn == "db")
        #expect(Self.names(server) == ["db.slow.test", "db"])
    }

    @Test func aTimeoutOnTheFirstNameserverFallsOverToTheSecondWithinTheTimeout() throws {
        let silent = try FakeDNSServer { _, _ in .init(drop: true) }
        defer { silent.stop() }
        let good = try FakeDNSServer(address: .v6(IPv6Address(high: 0, low: 1)), handler: Self.cluster)
        defer { good.stop() }
        let resolver = Self.resolver(
            resolvConf: "/nonexistent/resolv.conf", servers: [silent.server, good.server], timeoutMilliseconds: 200)
        let started = ContinuousClock.now
        let answer = try resolver.lookup("external.example.com").get()
        let elapsed = ContinuousClock.now - started
        #expect(answer.ipv6 == [IPv6Address("2001:db8::99")!])
        #expect(elapsed >= .milliseconds(190))
        #expect(elapsed < .milliseconds(1_500))
        #expect(silent.received.count == 2)
        #expect(good.received.count == 2)
        #expect(resolver.counters.timeouts == 2)
    }

    @Test func attemptsFromResolvConfAreHonoured() throws {
        let silent = try FakeDNSServer { _, _ in .init(drop: true) }
        defer { silent.stop() }
        let conf = try Self.file("nameserver 192.0.2.53\noptions attempts:3 timeout:1\n")
        defer { try? FileManager.default.removeItem(atPath: conf) }
        // The file's attempts, a short injected timeout, the fake server's port.
        let resolver = Self.resolver(resolvConf: conf, servers: [silent.server], timeoutMilliseconds: 80, attempts: nil)
        #expect(resolver.configuration.attempts == 3)
        let started = ContinuousClock.now
        #expect(resolver.lookup("db.example").failureCode == .timeout)
        #expect(ContinuousClock.now - started >= .milliseconds(230))
        #expect(silent.received.count == 6)
        #expect(resolver.cacheSnapshot().isEmpty)
    }

    @Test func rotateStartsEachQueryAtTheNextNameserver() throws {
        let first = try FakeDNSServer(handler: Self.cluster)
        defer { first.stop() }
        let second = try FakeDNSServer(handler: Self.cluster)
        defer { second.stop() }
        let conf = try Self.file("options rotate\n")
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [first.server, second.server])
        #expect(try resolver.lookup("external.example.com.").get().source == .dns)
        #expect(try resolver.lookup("db.prod.svc.cluster.local.").get().source == .dns)
        #expect(Self.names(first) == ["external.example.com"])
        #expect(Self.names(second) == ["db.prod.svc.cluster.local"])
    }

    @Test func nat64DiscoveryNeverGoesThroughTheSearchList() throws {
        let server = try FakeDNSServer(handler: Self.cluster)
        defer { server.stop() }
        let conf = try Self.file(Self.kubernetesResolvConf)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server])
        #expect(try NAT64PrefixDiscovery.discover(using: resolver).get() == [.wellKnown])
        #expect(Self.names(server) == ["ipv4only.arpa"])
    }

    @Test func hostsWinOverDNSAndAnIPv4OnlyEntryIsSynthesizedLikeAnAOnlyName() throws {
        let server = try FakeDNSServer(handler: Self.cluster)
        defer { server.stop() }
        let conf = try Self.file(Self.kubernetesResolvConf)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let hosts = try Self.file("""
            100.64.2.44 db.prod.svc.cluster.local legacy-db
            2001:db8::45 v6.prod.svc.cluster.local
            """)
        defer { try? FileManager.default.removeItem(atPath: hosts) }
        let resolver = Self.resolver(resolvConf: conf, servers: [server.server], hostsPath: hosts)
        let answer = try resolver.lookup("Legacy-DB").get()
        #expect(answer.source == .hosts)
        #expect(answer.ipv4 == [IPv4Address(100, 64, 2, 44)])
        #expect(answer.ipv6.isEmpty)
        let candidates = CandidatePlanner.order(
            aaaa: answer.ipv6, a: answer.ipv4, policy: .ipv6First, nat64: .wellKnown, hasIPv4Connectivity: false)
        #expect(candidates == [Candidate(address: .v6(NAT64Prefix.wellKnown.synthesize(IPv4Address(100, 64, 2, 44))),
                                         route: .nat64)])
        #expect(try resolver.lookup("db.prod.svc.cluster.local").get().ipv4 == [IPv4Address(100, 64, 2, 44)])
        #expect(try resolver.lookup("v6.prod.svc.cluster.local.").get().ipv6 == [IPv6Address("2001:db8::45")!])
        #expect(server.received.isEmpty)
        // hosts(5) matches the name as given only: the search list is a DNS matter (glibc's
        // files source never appends it).
        #expect(try resolver.lookup("db.prod").get().source == .dns)
        #expect(resolver.counters.hostsHits == 3)
    }
}
