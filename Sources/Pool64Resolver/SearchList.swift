/// resolv.conf(5)'s search list and `ndots`: the fully qualified names a host name stands for,
/// in the order glibc's res_search asks for them. Pure: no I/O.
///
/// - A name with a trailing dot is absolute: only the name itself.
/// - A name with at least `ndots` dots is tried as is first, then with each search domain.
/// - A name with fewer dots is tried with each search domain first, then as is (unless it has
///   no dot at all and `no-tld-query` is set).
///
/// With Kubernetes' `search prod.svc.cluster.local svc.cluster.local cluster.local` and
/// `ndots:5`, `db.prod` becomes `db.prod.prod.svc.cluster.local`, `db.prod.svc.cluster.local`,
/// `db.prod.cluster.local`, `db.prod`.
public struct SearchList: Hashable, Sendable {
    /// glibc's default `ndots`.
    public static let defaultNdots = 1
    /// glibc's RES_MAXNDOTS: larger `ndots:` values are capped at 15.
    public static let maxNdots = 15

    /// Search domains, normalized, in order; `""` stands for the root (`search .`), where glibc
    /// tries the name as is.
    public private(set) var domains: [String]
    /// Names with at least this many dots are tried as is before the search domains.
    public private(set) var ndots: Int
    /// `options no-tld-query`: a name without any dot is never tried as is when searching.
    public private(set) var noTLDQuery: Bool

    /// Creates a search list. Domains that are not valid names are dropped (with a trailing dot
    /// or not), duplicates are dropped, and `ndots` is bounded to 0…15.
    public init(domains: [String] = [], ndots: Int = defaultNdots, noTLDQuery: Bool = false) {
        var kept: [String] = []
        for domain in domains {
            let normalized = domain == "." ? "" : DNSMessage.normalize(domain)
            guard let normalized, !kept.contains(normalized) else { continue }
            kept.append(normalized)
        }
        self.domains = kept
        self.ndots = min(max(ndots, 0), Self.maxNdots)
        self.noTLDQuery = noTLDQuery
    }

    /// The names to query for `name`, normalized, in order, without duplicates; empty when
    /// `name` is not a valid host name. Candidates longer than 253 bytes are left out (glibc
    /// cannot send them either).
    public func candidates(for name: String) -> [String] {
        guard let asIs = DNSMessage.normalize(name) else { return [] }
        if name.hasSuffix(".") || domains.isEmpty { return [asIs] }
        let dots = asIs.utf8.count(where: { $0 == UInt8(ascii: ".") })
        let searched = domains.compactMap { domain in
            domain.isEmpty ? asIs : DNSMessage.normalize(asIs + "." + domain)
        }
        var ordered: [String]
        if dots >= ndots {
            ordered = [asIs] + searched
        } else {
            // res_search: the as-is query comes last "unless RES_NOTLDQUERY is set and there
            // were no dots"; a root entry in the list already asked it in its place.
            ordered = searched
            if dots > 0 || !noTLDQuery { ordered.append(asIs) }
        }
        var unique: [String] = []
        for candidate in ordered where !unique.contains(candidate) { unique.append(candidate) }
        return unique
    }
}

/// How one candidate name ended after every nameserver round.
enum CandidateOutcome: Hashable {
    /// At least one family has addresses. `complete` is false when the other family timed out
    /// or failed (such an answer is used but not cached).
    case answer(DNSAnswer, complete: Bool)
    /// NXDOMAIN for the name (from either query), negative TTL already bounded.
    case nameNotFound(negativeTTL: UInt32)
    /// Both families NOERROR without records (RFC 2308 §2.2), negative TTL already bounded.
    case noData(negativeTTL: UInt32)
    /// Every nameserver that answered sent SERVFAIL / REFUSED or failed at the socket.
    case serverFailure(detail: String)
    /// Some nameserver stayed silent and no family got an answer.
    case timeout(detail: String)
}

/// The walk over a name's candidates, glibc res_search's loop as a pure state machine:
/// `next()` gives the name to query, `record(_:)` takes what that query established.
///
/// - An answer ends the walk.
/// - NXDOMAIN and NODATA move on to the next candidate (res_search: "keep trying").
/// - SERVFAIL moves on too (res_search's `got_servfail`: "try next search element").
/// - A timeout stops the walk through the search domains, but the name as is is still tried if
///   it has not been yet (res_search: "stop searching up, but try the input name below in case
///   it's fully-qualified"). Unlike glibc, a timeout of the as-is name tried first (ndots
///   reached) ends the walk too, so a silent DNS path costs at most two candidates' timeouts.
struct SearchWalk {
    /// What the walk concluded once `next()` returns nil.
    enum Verdict: Hashable {
        /// A candidate answered; cache it only when `cacheable`.
        case answer(DNSAnswer, cacheable: Bool)
        /// Every candidate was NXDOMAIN / NODATA: cacheable for `ttl` seconds.
        case negative(ResolverError, ttl: UInt32)
        /// A temporary failure somewhere: not cached.
        case failure(ResolverError)
    }

    /// The name as given, normalized.
    let name: String
    /// The names to try, from `SearchList.candidates(for:)`.
    let candidates: [String]
    /// The names queried so far, in order.
    private(set) var tried: [String] = []
    private var index = 0
    private var searchStopped = false
    private var answer: (DNSAnswer, Bool)?
    private var negativeTTL: UInt32?
    private var sawNameNotFound = false
    private var sawNoData = false
    private var problems: [String] = []
    private var sawServerFailure = false
    private var sawTimeout = false

    /// Starts a walk over `candidates` for `name`.
    init(name: String, candidates: [String]) {
        self.name = name
        self.candidates = candidates
    }

    /// The next name to query, or nil when the walk is over.
    mutating func next() -> String? {
        guard answer == nil else { return nil }
        while index < candidates.count {
            let candidate = candidates[index]
            index += 1
            if searchStopped && candidate != name { continue }
            if tried.contains(candidate) { continue }
            tried.append(candidate)
            return candidate
        }
        return nil
    }

    /// Records how the last name from `next()` ended.
    mutating func record(_ outcome: CandidateOutcome) {
        switch outcome {
        case .answer(let found, let complete):
            answer = (found, complete)
        case .nameNotFound(let ttl):
            sawNameNotFound = true
            negativeTTL = min(negativeTTL ?? .max, ttl)
        case .noData(let ttl):
            sawNoData = true
            negativeTTL = min(negativeTTL ?? .max, ttl)
        case .serverFailure(let detail):
            sawServerFailure = true
            if !detail.isEmpty { problems.append(detail) }
        case .timeout(let detail):
            sawTimeout = true
            searchStopped = true
            if !detail.isEmpty { problems.append(detail) }
        }
    }

    /// The conclusion. A temporary failure outranks the negative answers of other candidates
    /// (the name may exist under the one that failed), so such a result is never cached; among
    /// negative answers NODATA outranks NXDOMAIN, as res_search reports `got_nodata`.
    var verdict: Verdict {
        if let (found, complete) = answer { return .answer(found, cacheable: complete) }
        let triedText = tried.count > 1 ? "tried " + tried.joined(separator: ", ") : ""
        let detail = ([triedText] + problems.suffix(3)).filter { !$0.isEmpty }.joined(separator: "; ")
        if sawTimeout { return .failure(ResolverError(code: .timeout, name: name, detail: detail)) }
        if sawServerFailure || !(sawNoData || sawNameNotFound) {
            return .failure(ResolverError(code: .serverFailure, name: name, detail: detail))
        }
        let code: ResolverError.Code = sawNoData ? .noData : .nameNotFound
        return .negative(ResolverError(code: code, name: name, detail: triedText), ttl: negativeTTL ?? 0)
    }
}
