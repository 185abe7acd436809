import Testing
@testable import Pool64Resolver

@Suite("DNS cache expiry with an injected clock")
struct DNSCacheTests {
    static let second: UInt64 = 1_000_000_000

    static func answer(ttl: UInt32, ipv6TTL: UInt32? = nil) -> DNSAnswer {
        DNSAnswer(name: "db.test", ipv6: ipv6TTL == nil ? [] : [IPv6Address("2001:db8::1")!],
                  ipv4: [IPv4Address(100, 64, 2, 10)], ipv6TTL: ipv6TTL, ipv4TTL: ttl, source: .dns)
    }

    @Test func entryLivesExactlyItsTTL() throws {
        var cache = DNSCache(maxTTL: 300, minTTL: 1)
        cache.store(Self.answer(ttl: 30), key: "db.test", now: 100 * Self.second)
        let cached = try #require(try cache.lookup("db.test", now: 129 * Self.second)?.get())
        #expect(cached.source == .cache)
        #expect(cached.ipv4TTL == 1)
        #expect(cache.lookup("db.test", now: 130 * Self.second) == nil)
        #expect(cache.entries.isEmpty)
    }

    @Test func shortestFamilyTTLDecides() {
        var cache = DNSCache(maxTTL: 300, minTTL: 1)
        cache.store(Self.answer(ttl: 60, ipv6TTL: 10), key: "db.test", now: 0)
        #expect(cache.lookup("db.test", now: 9 * Self.second) != nil)
        #expect(cache.lookup("db.test", now: 10 * Self.second) == nil)
    }

    @Test func clampAppliesCapAndFloor() {
        let cache = DNSCache(maxTTL: 300, minTTL: 1)
        #expect(cache.clamp(86_400) == 300)
        #expect(cache.clamp(0) == 1)
        #expect(cache.clamp(42) == 42)
    }

    @Test func negativeEntriesExpire() throws {
        var cache = DNSCache(maxTTL: 300, minTTL: 1)
        cache.storeNegative(ResolverError(code: .nameNotFound, name: "gone.test"), key: "gone.test", ttl: 5, now: 0)
        let snapshot = cache.snapshot(now: 2 * Self.second)
        #expect(snapshot.count == 1)
        #expect(snapshot.first?.isNegative == true)
        #expect(snapshot.first?.remainingTTL == .seconds(3))
        if case .failure(let error)? = cache.lookup("gone.test", now: 4 * Self.second) {
            #expect(error.code == .nameNotFound)
        } else {
            Issue.record("expected a cached negative answer")
        }
        #expect(cache.lookup("gone.test", now: 5 * Self.second) == nil)
        #expect(cache.snapshot(now: 5 * Self.second).isEmpty)
    }

    @Test func invalidateDropsOneName() {
        var cache = DNSCache(maxTTL: 300, minTTL: 1)
        cache.store(Self.answer(ttl: 30), key: "db.test", now: 0)
        cache.invalidate("db.test")
        #expect(cache.lookup("db.test", now: 0) == nil)
    }
}
