import Foundation
import Testing
@testable import Pool64Resolver

@Suite("DNS stub resolver against a fake server on loopback")
struct DNSResolverTests {
    static func zone(_ name: String, _ type: UInt16) -> FakeDNSServer.Reply {
        switch (name, type) {
        case ("db.test", 28): return .init(answers: [.aaaa("db.test", "2001:db8::10", ttl: 120), .aaaa("db.test", "2001:db8::11", ttl: 90)])
        case ("db.test", 1): return .init(answers: [.a("db.test", "100.64.2.10", ttl: 30)])
        case ("alias.test", 28): return .init(answers: [.cname("alias.test", "mid.test", ttl: 20), .cname("mid.test", "v4only.test", ttl: 40)])
        case ("alias.test", 1):
            return .init(answers: [.cname("alias.test", "mid.test", ttl: 20), .cname("mid.test", "v4only.test", ttl: 40),
                                   .a("v4only.test", "100.64.2.20", ttl: 60)])
        case ("v4only.test", 1): return .init(answers: [.a("v4only.test", "100.64.2.20", ttl: 60)])
        case ("long.test", 1): return .init(answers: [.a("long.test", "100.64.2.30", ttl: 86_400)])
        case ("zero.test", 28): return .init(answers: [.aaaa("zero.test", "2001:db8::30", ttl: 0)])
        case ("big.test", _): return .init(answers: type == 1 ? [.a("big.test", "100.64.2.40")] : [.aaaa("big.test", "2001:db8::40")], truncateOverUDP: true)
        case ("spoofed.test", _): return .init(answers: type == 1 ? [.a("spoofed.test", "100.64.2.50")] : [], wrongIDFirst: true)
        case ("nodata.test", _): return .init()
        case ("slow.test", _): return .init(drop: true)
        case ("broken.test", _): return .init(rcode: 2)
        case ("ipv4only.arpa", 28): return .init(answers: [.aaaa("ipv4only.arpa", "64:ff9b::192.0.0.170"), .aaaa("ipv4only.arpa", "64:ff9b::192.0.0.171")])
        case ("ipv4only.arpa", 1): return .init(answers: [.a("ipv4only.arpa", "192.0.0.170"), .a("ipv4only.arpa", "192.0.0.171")])
        default: return .init(rcode: 3, soaMinimum: 60)
        }
    }

    static func resolver(_ servers: [DNSServer], clock: TestClock = TestClock(), hosts: String? = nil,
                         timeoutMilliseconds: Int = 300, attempts: Int = 1) -> DNSResolver {
        var options = DNSResolverOptions()
        options.resolvConfPath = "/nonexistent/resolv.conf"
        options.hostsPath = hosts
        options.nameservers = servers
        options.timeoutMilliseconds = timeoutMilliseconds
        options.attempts = attempts
        options.clock = clock.resolverClock
        // Hermetic: neither the runner's LOCALDOMAIN nor its host name may add a search list.
        options.environment = [:]
        options.hostname = nil
        return DNSResolver(options: options)
    }

    @Test func queriesAAAAAndATogetherAndCaches() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let clock = TestClock()
        let resolver = Self.resolver([server.server], clock: clock)
        let answer = try resolver.lookup("DB.Test").get()
        #expect(answer.ipv6 == [IPv6Address("2001:db8::10")!, IPv6Address("2001:db8::11")!])
        #expect(answer.ipv4 == [IPv4Address(100, 64, 2, 10)])
        #expect(answer.ipv6TTL == 90)
        #expect(answer.ipv4TTL == 30)
        #expect(answer.source == .dns)
        #expect(Set(server.received.map(\.type)) == [1, 28])
        clock.advance(seconds: 29)
        let cached = try resolver.lookup("db.test").get()
        #expect(cached.source == .cache)
        #expect(cached.ipv4TTL == 1)
        #expect(server.received.count == 2)
        clock.advance(seconds: 1)
        #expect(try resolver.lookup("db.test").get().source == .dns)
        #expect(server.received.count == 4)
        let counters = resolver.counters
        #expect(counters.lookups == 3)
        #expect(counters.cacheHits == 1)
        #expect(counters.queries == 4)
        // With a trailing dot the name is absolute: its own cache entry, the same DNS name.
        #expect(try resolver.lookup("db.test.").get().fqdn == "db.test")
        #expect(server.received.count == 6)
        #expect(resolver.cacheSnapshot().map(\.name) == ["db.test", "db.test."])
    }

    @Test func followsCNAMEChainsWithTheirTTLs() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let answer = try Self.resolver([server.server]).lookup("alias.test").get()
        #expect(answer.ipv4 == [IPv4Address(100, 64, 2, 20)])
        #expect(answer.ipv6.isEmpty)
        #expect(answer.ipv4TTL == 20)
        #expect(answer.ipv6TTL == nil)
    }

    @Test func capsAndFloorsTTLs() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let resolver = Self.resolver([server.server])
        #expect(try resolver.lookup("long.test").get().ipv4TTL == 300)
        #expect(try resolver.lookup("zero.test").get().ipv6TTL == 1)
        let snapshot = resolver.cacheSnapshot()
        #expect(snapshot.map(\.name) == ["long.test", "zero.test"])
        #expect(snapshot[0].remainingTTL == .seconds(300))
        #expect(snapshot[1].remainingTTL == .seconds(1))
    }

    @Test func nxdomainIsCachedBrieflyThenExpires() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let clock = TestClock()
        let resolver = Self.resolver([server.server], clock: clock)
        #expect(resolver.lookup("missing.test").failureCode == .nameNotFound)
        #expect(resolver.lookup("missing.test").failureCode == .nameNotFound)
        #expect(server.received.count == 2)
        #expect(resolver.cacheSnapshot().first?.isNegative == true)
        #expect(resolver.cacheSnapshot().first?.remainingTTL == .seconds(5))
        clock.advance(seconds: 5)
        #expect(resolver.cacheSnapshot().isEmpty)
        #expect(resolver.lookup("missing.test").failureCode == .nameNotFound)
        #expect(server.received.count == 4)
        #expect(resolver.counters.negativeAnswers == 2)
    }

    @Test func nodataAndServfail() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let resolver = Self.resolver([server.server])
        #expect(resolver.lookup("nodata.test").failureCode == .noData)
        #expect(resolver.lookup("broken.test").failureCode == .serverFailure)
        #expect(resolver.counters.failures == 2)
    }

    @Test func servfailMovesOnToTheNextNameserver() throws {
        let broken = try FakeDNSServer { _, _ in .init(rcode: 2) }
        defer { broken.stop() }
        let good = try FakeDNSServer(address: .v6(IPv6Address(high: 0, low: 1)), handler: Self.zone)
        defer { good.stop() }
        let answer = try Self.resolver([broken.server, good.server]).lookup("db.test").get()
        #expect(answer.ipv4 == [IPv4Address(100, 64, 2, 10)])
        #expect(broken.received.count == 2)
        #expect(good.received.count == 2)
    }

    @Test func timeoutIsReportedAndNotCached() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let resolver = Self.resolver([server.server], timeoutMilliseconds: 150, attempts: 2)
        let started = ContinuousClock.now
        #expect(resolver.lookup("slow.test").failureCode == .timeout)
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(10))
        #expect(resolver.counters.timeouts == 4)
        #expect(server.received.count == 4)
        #expect(resolver.cacheSnapshot().isEmpty)
    }

    @Test func truncatedRepliesAreRetriedOverTCP() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let resolver = Self.resolver([server.server])
        let answer = try resolver.lookup("big.test").get()
        #expect(answer.ipv4 == [IPv4Address(100, 64, 2, 40)])
        #expect(answer.ipv6 == [IPv6Address("2001:db8::40")!])
        #expect(server.received.filter(\.overTCP).count == 2)
        #expect(resolver.counters.tcpRetries == 2)
    }

    @Test func repliesWithTheWrongIDAreIgnored() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let answer = try Self.resolver([server.server]).lookup("spoofed.test").get()
        #expect(answer.ipv4 == [IPv4Address(100, 64, 2, 50)])
    }

    @Test func refusedPortFailsFast() throws {
        // Find a free port by starting and stopping a server.
        let server = try FakeDNSServer(handler: Self.zone)
        let dead = server.server
        server.stop()
        let resolver = Self.resolver([dead], timeoutMilliseconds: 2_000)
        let started = ContinuousClock.now
        #expect(resolver.lookup("db.test").failureCode == .serverFailure)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func literalsNeverHitDNS() throws {
        let resolver = Self.resolver([])
        let v4 = try resolver.lookup("100.64.2.10").get()
        #expect(v4.ipv4 == [IPv4Address(100, 64, 2, 10)])
        #expect(v4.literal == .ipv4)
        let v6 = try resolver.lookup("[2001:db8::1]").get()
        #expect(v6.ipv6 == [IPv6Address("2001:db8::1")!])
        #expect(v6.literal == .ipv6)
        #expect(try resolver.lookup("::ffff:100.64.2.10").get().literal == .ipv4)
        #expect(resolver.lookup("bad name").failureCode == .invalidName)
        #expect(resolver.lookup("db.test").failureCode == .noNameservers)
    }

    @Test func hostsFileAnswersFirstAndIsReReadWhenChanged() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pool64-hosts-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "2001:db8::99 db.test\n".write(toFile: path, atomically: true, encoding: .utf8)
        let resolver = Self.resolver([server.server], hosts: path)
        let answer = try resolver.lookup("db.test").get()
        #expect(answer.source == .hosts)
        #expect(answer.ipv6 == [IPv6Address("2001:db8::99")!])
        #expect(answer.ipv6TTL == 60)
        #expect(server.received.isEmpty)
        try "# moved\n100.64.9.9 db.test other.test\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try resolver.lookup("other.test").get().ipv4 == [IPv4Address(100, 64, 9, 9)])
        #expect(try resolver.lookup("db.test").get().ipv6.isEmpty)
        #expect(resolver.counters.hostsHits == 3)
    }

    @Test func invalidateForcesANewQuery() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        let resolver = Self.resolver([server.server])
        _ = resolver.lookup("db.test")
        resolver.invalidate("DB.TEST")
        #expect(try resolver.lookup("db.test").get().source == .dns)
        #expect(server.received.count == 4)
    }

    @Test func discoversTheNAT64PrefixThroughDNS() throws {
        let server = try FakeDNSServer(handler: Self.zone)
        defer { server.stop() }
        #expect(try NAT64PrefixDiscovery.discover(using: Self.resolver([server.server])).get() == [.wellKnown])
        let plain = try FakeDNSServer { _, type in type == 1 ? .init(answers: [.a("ipv4only.arpa", "192.0.0.170")]) : .init() }
        defer { plain.stop() }
        #expect(try NAT64PrefixDiscovery.discover(using: Self.resolver([plain.server])).get() == [])
    }

    @Test func readsResolvConfFromThePath() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pool64-resolv-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "nameserver 2001:db8::53\noptions timeout:2 attempts:3\n".write(toFile: path, atomically: true, encoding: .utf8)
        var options = DNSResolverOptions()
        options.resolvConfPath = path
        options.hostsPath = nil
        let configuration = DNSResolver(options: options).configuration
        #expect(configuration.nameservers == [DNSServer(address: .v6(IPv6Address("2001:db8::53")!))])
        #expect(configuration.timeoutMilliseconds == 2_000)
        #expect(configuration.attempts == 3)
    }
}

extension Result where Failure == ResolverError {
    var failureCode: ResolverError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}
