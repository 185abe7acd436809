/// Addresses for one name, from DNS, the cache, /etc/hosts or a literal.
public struct DNSAnswer: Hashable, Sendable {
    /// Where the answer came from.
    public enum Source: String, Hashable, Sendable {
        /// Fresh from a nameserver.
        case dns
        /// From the resolver's cache.
        case cache
        /// From /etc/hosts.
        case hosts
        /// The name was an IP literal; nothing was looked up.
        case literal
    }

    /// The normalized name as asked (or the literal as given).
    public var name: String
    /// The fully qualified name that answered: `name` with a search domain appended when the
    /// search list supplied the answer, otherwise `name` itself.
    public var fqdn: String
    /// AAAA records (IPv4-mapped ones already moved to `ipv4`).
    public var ipv6: [IPv6Address]
    /// A records.
    public var ipv4: [IPv4Address]
    /// Seconds the AAAA records stay valid (clamped to the cache floor and cap); nil if none.
    public var ipv6TTL: UInt32?
    /// Seconds the A records stay valid (clamped to the cache floor and cap); nil if none.
    public var ipv4TTL: UInt32?
    /// Where the answer came from.
    public var source: Source
    /// Whether the name was an IP literal, and of which family.
    public var literal: HostLiteral

    /// Creates an answer.
    public init(
        name: String, ipv6: [IPv6Address], ipv4: [IPv4Address], ipv6TTL: UInt32?, ipv4TTL: UInt32?,
        source: Source, literal: HostLiteral = .none, fqdn: String? = nil
    ) {
        self.name = name
        self.fqdn = fqdn ?? name
        self.ipv6 = ipv6
        self.ipv4 = ipv4
        self.ipv6TTL = ipv6TTL
        self.ipv4TTL = ipv4TTL
        self.source = source
        self.literal = literal
    }
}

/// One cache entry as reported to stats.
public struct DNSCacheEntrySnapshot: Hashable, Sendable {
    /// The normalized name as asked (with its trailing dot if it had one).
    public var name: String
    /// The name that answered (a search-list candidate), or `name` without its dot; for a
    /// negative entry, the name as asked.
    public var fqdn: String
    /// Cached AAAA records.
    public var ipv6: [IPv6Address]
    /// Cached A records.
    public var ipv4: [IPv4Address]
    /// Time left before the entry expires.
    public var remainingTTL: Duration
    /// True for a cached NXDOMAIN / NODATA.
    public var isNegative: Bool
}

/// The TTL-honouring answer cache. A pure value: the resolver owns it behind its lock and
/// passes the clock's `now` in.
struct DNSCache {
    struct Entry {
        var result: Result<DNSAnswer, ResolverError>
        var storedAt: UInt64
        var expiresAt: UInt64
    }

    var maxTTL: UInt32
    var minTTL: UInt32
    private(set) var entries: [String: Entry] = [:]

    init(maxTTL: UInt32, minTTL: UInt32) {
        self.maxTTL = maxTTL
        self.minTTL = min(minTTL, maxTTL)
    }

    /// Applies the floor and the cap; a zero TTL would otherwise mean "re-query on every dial".
    func clamp(_ ttl: UInt32) -> UInt32 { min(max(ttl, minTTL), maxTTL) }

    /// The live entry for `name`, with TTLs reduced to what remains; drops it if expired.
    mutating func lookup(_ name: String, now: UInt64) -> Result<DNSAnswer, ResolverError>? {
        guard let entry = entries[name] else { return nil }
        guard now < entry.expiresAt else {
            entries[name] = nil
            return nil
        }
        let elapsed = UInt32(min((now - entry.storedAt) / 1_000_000_000, UInt64(UInt32.max)))
        return entry.result.map { answer in
            var answer = answer
            answer.source = .cache
            answer.ipv6TTL = answer.ipv6TTL.map { $0 > elapsed ? $0 - elapsed : 0 }
            answer.ipv4TTL = answer.ipv4TTL.map { $0 > elapsed ? $0 - elapsed : 0 }
            return answer
        }
    }

    /// Stores a positive answer under `key` (the name as asked) until the shortest of its
    /// (already clamped) TTLs runs out.
    mutating func store(_ answer: DNSAnswer, key: String, now: UInt64) {
        let ttl = [answer.ipv6TTL, answer.ipv4TTL].compactMap { $0 }.min() ?? minTTL
        entries[key] = Entry(
            result: .success(answer), storedAt: now, expiresAt: now + UInt64(ttl) * 1_000_000_000)
    }

    /// Stores a negative answer under `key` for `ttl` seconds (the caller has applied its own
    /// bound).
    mutating func storeNegative(_ error: ResolverError, key: String, ttl: UInt32, now: UInt64) {
        entries[key] = Entry(result: .failure(error), storedAt: now, expiresAt: now + UInt64(ttl) * 1_000_000_000)
    }

    mutating func invalidate(_ name: String) { entries[name] = nil }

    mutating func removeAll() { entries.removeAll() }

    /// Live entries sorted by name; expired ones are dropped.
    mutating func snapshot(now: UInt64) -> [DNSCacheEntrySnapshot] {
        entries = entries.filter { now < $0.value.expiresAt }
        return entries.sorted { $0.key < $1.key }.map { name, entry in
            let remaining = Duration.nanoseconds(Int64(entry.expiresAt - now))
            switch entry.result {
            case .success(let answer):
                return DNSCacheEntrySnapshot(
                    name: name, fqdn: answer.fqdn, ipv6: answer.ipv6, ipv4: answer.ipv4, remainingTTL: remaining,
                    isNegative: false)
            case .failure(let error):
                return DNSCacheEntrySnapshot(
                    name: name, fqdn: error.name, ipv6: [], ipv4: [], remainingTTL: remaining, isNegative: true)
            }
        }
    }
}
