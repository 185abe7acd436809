import Testing
@testable import Pool64Resolver

@Suite("Search list candidates and the search walk (no sockets)")
struct SearchListTests {
    /// A Kubernetes pod's search list in namespace `prod` with the kubelet's `ndots:5`.
    static let kubernetes = SearchList(
        domains: ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local"], ndots: 5)

    @Test func kubernetesShortServiceNameTriesSuffixesFirst() {
        #expect(Self.kubernetes.candidates(for: "db.prod") == [
            "db.prod.prod.svc.cluster.local", "db.prod.svc.cluster.local", "db.prod.cluster.local", "db.prod",
        ])
        #expect(Self.kubernetes.candidates(for: "db") == [
            "db.prod.svc.cluster.local", "db.svc.cluster.local", "db.cluster.local", "db",
        ])
    }

    @Test func kubernetesFullServiceNameHasFourDotsSoSuffixesStillComeFirst() {
        #expect(Self.kubernetes.candidates(for: "db.prod.svc.cluster.local") == [
            "db.prod.svc.cluster.local.prod.svc.cluster.local", "db.prod.svc.cluster.local.svc.cluster.local",
            "db.prod.svc.cluster.local.cluster.local", "db.prod.svc.cluster.local",
        ])
    }

    @Test func trailingDotIsAbsolute() {
        #expect(Self.kubernetes.candidates(for: "db.prod.svc.cluster.local.") == ["db.prod.svc.cluster.local"])
        #expect(Self.kubernetes.candidates(for: "ipv4only.arpa.") == ["ipv4only.arpa"])
    }

    @Test func namesWithAtLeastNdotsDotsAreTriedAsIsFirst() {
        #expect(Self.kubernetes.candidates(for: "a.b.c.d.e.f") == [
            "a.b.c.d.e.f", "a.b.c.d.e.f.prod.svc.cluster.local", "a.b.c.d.e.f.svc.cluster.local",
            "a.b.c.d.e.f.cluster.local",
        ])
        let glibcDefault = SearchList(domains: ["example.com"])
        #expect(glibcDefault.ndots == 1)
        #expect(glibcDefault.candidates(for: "DB.Internal") == ["db.internal", "db.internal.example.com"])
        #expect(glibcDefault.candidates(for: "db") == ["db.example.com", "db"])
        #expect(SearchList(domains: ["example.com"], ndots: 0).candidates(for: "db") == ["db", "db.example.com"])
    }

    @Test func noSearchListMeansTheNameAsGiven() {
        #expect(SearchList().candidates(for: "db") == ["db"])
        #expect(SearchList(ndots: 5).candidates(for: "Db.Test") == ["db.test"])
    }

    @Test func ndotsIsCappedLikeGlibc() {
        #expect(SearchList(ndots: 99).ndots == 15)
        #expect(SearchList(ndots: -3).ndots == 0)
    }

    @Test func rootOnTheListAsksTheNameInItsPlace() {
        let list = SearchList(domains: ["a.test", ".", "b.test"], ndots: 2)
        #expect(list.domains == ["a.test", "", "b.test"])
        #expect(list.candidates(for: "db") == ["db.a.test", "db", "db.b.test"])
    }

    @Test func noTLDQuerySkipsBareSingleLabels() {
        let list = SearchList(domains: ["a.test"], noTLDQuery: true)
        #expect(list.candidates(for: "db") == ["db.a.test"])
        #expect(list.candidates(for: "db.x") == ["db.x", "db.x.a.test"])
    }

    @Test func invalidNamesDomainsAndOverlongCandidatesAreDropped() {
        let long = String(repeating: "a", count: 63)
        let domain = [long, long, long].joined(separator: ".")
        let list = SearchList(domains: ["bad domain", "a..b", "A.Test.", "a.test", domain], ndots: 3)
        #expect(list.domains == ["a.test", domain])
        #expect(list.candidates(for: "db") == ["db.a.test", "db." + domain, "db"])
        #expect(list.candidates(for: long + ".x") == [long + ".x.a.test", long + ".x"])
        #expect(list.candidates(for: "bad name").isEmpty)
        #expect(list.candidates(for: ".").isEmpty)
        #expect(list.candidates(for: "").isEmpty)
    }

    static func answer(_ fqdn: String) -> DNSAnswer {
        DNSAnswer(name: "db", ipv6: [], ipv4: [IPv4Address(10, 0, 0, 1)], ipv6TTL: nil, ipv4TTL: 30, source: .dns,
                  fqdn: fqdn)
    }

    static func walk(_ outcomes: [CandidateOutcome], candidates: [String] = ["db.a", "db.b", "db.c", "db"])
        -> (tried: [String], verdict: SearchWalk.Verdict)
    {
        var walk = SearchWalk(name: "db", candidates: candidates)
        var outcomes = outcomes[...]
        while walk.next() != nil {
            walk.record(outcomes.popFirst() ?? .nameNotFound(negativeTTL: 5))
        }
        return (walk.tried, walk.verdict)
    }

    @Test func negativeAnswersMoveOnAndTheFirstAnswerEndsTheWalk() {
        let result = Self.walk([
            .nameNotFound(negativeTTL: 5), .noData(negativeTTL: 5), .answer(Self.answer("db.c"), complete: true),
        ])
        #expect(result.tried == ["db.a", "db.b", "db.c"])
        #expect(result.verdict == .answer(Self.answer("db.c"), cacheable: true))
        let half = Self.walk([.answer(Self.answer("db.a"), complete: false)])
        #expect(half.tried == ["db.a"])
        #expect(half.verdict == .answer(Self.answer("db.a"), cacheable: false))
    }

    @Test func allNegativeIsCachedWithTheShortestTTLAndNODATAWins() {
        let result = Self.walk([.nameNotFound(negativeTTL: 5), .noData(negativeTTL: 3), .nameNotFound(negativeTTL: 4)])
        #expect(result.tried == ["db.a", "db.b", "db.c", "db"])
        guard case .negative(let error, let ttl) = result.verdict else {
            Issue.record("expected a negative verdict, got \(result.verdict)")
            return
        }
        #expect(error.code == .noData)
        #expect(error.name == "db")
        #expect(error.detail == "tried db.a, db.b, db.c, db")
        #expect(ttl == 3)
        guard case .negative(let nx, _) = Self.walk([]).verdict else {
            Issue.record("expected a negative verdict")
            return
        }
        #expect(nx.code == .nameNotFound)
    }

    @Test func servfailMovesOnButIsNotCached() {
        let result = Self.walk([.serverFailure(detail: "ns rcode 2"), .answer(Self.answer("db.b"), complete: true)])
        #expect(result.tried == ["db.a", "db.b"])
        #expect(result.verdict == .answer(Self.answer("db.b"), cacheable: true))
        let failed = Self.walk([.serverFailure(detail: "ns rcode 2")])
        #expect(failed.tried == ["db.a", "db.b", "db.c", "db"])
        guard case .failure(let error) = failed.verdict else {
            Issue.record("expected a failure, got \(failed.verdict)")
            return
        }
        #expect(error.code == .serverFailure)
        #expect(error.detail.contains("ns rcode 2"))
    }

    @Test func timeoutStopsTheSearchButStillTriesTheNameAsIs() {
        let result = Self.walk([.timeout(detail: "ns timed out"), .nameNotFound(negativeTTL: 5)])
        #expect(result.tried == ["db.a", "db"])
        guard case .failure(let error) = result.verdict else {
            Issue.record("expected a failure, got \(result.verdict)")
            return
        }
        #expect(error.code == .timeout)
        #expect(error.detail == "tried db.a, db; ns timed out")
        // A timeout outranks the NXDOMAIN of the name as is: the name may exist under db.a.
        let answered = Self.walk([.timeout(detail: ""), .answer(Self.answer("db"), complete: true)])
        #expect(answered.tried == ["db.a", "db"])
        #expect(answered.verdict == .answer(Self.answer("db"), cacheable: true))
    }

    @Test func timeoutOnTheNameAsIsTriedFirstEndsTheWalk() {
        // glibc would still try one search domain here; the name as is was already asked, and a
        // silent DNS path would only cost another full round of timeouts.
        var walk = SearchWalk(name: "a.b", candidates: ["a.b", "a.b.x", "a.b.y"])
        #expect(walk.next() == "a.b")
        walk.record(.timeout(detail: ""))
        #expect(walk.next() == nil)
        #expect(walk.tried == ["a.b"])
    }
}
