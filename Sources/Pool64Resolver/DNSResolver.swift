#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of the stub resolver. Paths and the clock are injectable for tests.
public struct DNSResolverOptions: Sendable {
    /// resolv.conf(5) location; re-read when its modification time changes.
    public var resolvConfPath: String = "/etc/resolv.conf"
    /// hosts(5) location, or nil to skip it; re-read when its modification time changes.
    public var hostsPath: String? = "/etc/hosts"
    /// Nameservers to use instead of resolv.conf's (tests, or an operator override).
    public var nameservers: [DNSServer]? = nil
    /// Per-attempt timeout in milliseconds instead of resolv.conf's.
    public var timeoutMilliseconds: Int? = nil
    /// Rounds over the nameservers instead of resolv.conf's.
    public var attempts: Int? = nil
    /// Cap on cached record TTLs, seconds.
    public var maxTTL: UInt32 = 300
    /// Floor on cached record TTLs, seconds.
    public var minTTL: UInt32 = 1
    /// How long NXDOMAIN / NODATA is cached, seconds (shorter if the zone's SOA says so).
    public var negativeTTL: UInt32 = 5
    /// The TTL reported for /etc/hosts answers, seconds.
    public var hostsTTL: UInt32 = 60
    /// The clock for cache expiry.
    public var clock: ResolverClock = .system
    /// glibc's resolver environment variables: `LOCALDOMAIN` (replaces the search list) and
    /// `RES_OPTIONS` (applied after resolv.conf's `options`). Read from the process at init.
    public var environment: [String: String] = DNSResolverOptions.processEnvironment()
    /// The host name whose domain part is the search list when resolv.conf has neither `search`
    /// nor `domain` (glibc's fallback); read with gethostname(2) at init, nil to skip.
    public var hostname: String? = DNSResolverOptions.processHostname()

    /// Defaults: the system files, a 300 s cap, a 1 s floor, 5 s negative caching, the
    /// process's `LOCALDOMAIN` / `RES_OPTIONS` and host name.
    public init() {}

    /// The process's `LOCALDOMAIN` and `RES_OPTIONS`, where set.
    public static func processEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        for key in ["LOCALDOMAIN", "RES_OPTIONS"] {
            if let value = getenv(key) { environment[key] = String(cString: value) }
        }
        return environment
    }

    /// gethostname(2), or nil if it fails.
    public static func processHostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}

/// What the resolver has done since it started; cheap to read for stats.
public struct DNSResolverCounters: Hashable, Sendable {
    /// `lookup` calls.
    public var lookups = 0
    /// Lookups answered from the cache (positive or negative).
    public var cacheHits = 0
    /// Lookups answered from /etc/hosts.
    public var hostsHits = 0
    /// DNS queries sent (UDP and TCP; each family counts).
    public var queries = 0
    /// Queries retried over TCP after a truncated UDP reply.
    public var tcpRetries = 0
    /// Queries that saw no reply before the per-attempt timeout.
    public var timeouts = 0
    /// Queries answered with SERVFAIL / REFUSED, or that failed at the socket.
    public var failures = 0
    /// Lookups that ended in NXDOMAIN or NODATA.
    public var negativeAnswers = 0
    /// Lookups that ended in an error other than a negative answer.
    public var failedLookups = 0
    /// Candidate names queried after the first one of a lookup (search list / `ndots`).
    public var searchFallbacks = 0

    /// All zero.
    public init() {}
}

/// A blocking DNS stub resolver that queries AAAA and A concurrently over UDP (TCP after
/// truncation), follows CNAMEs, consults /etc/hosts first, walks resolv.conf's search list the
/// way glibc does and caches by TTL under the name as given.
///
/// `lookup` blocks for up to `attempts × nameservers × timeout`: call it from a dedicated
/// thread, never from an event loop. The instance is safe to share between threads; its lock
/// is never held during network I/O.
public final class DNSResolver: Sendable {
    struct FileStamp: Equatable {
        var seconds: Int
        var nanoseconds: Int
        var size: Int
    }

    struct State {
        var cache: DNSCache
        var counters = DNSResolverCounters()
        var resolvConf: ResolvConf
        var resolvConfStamp: FileStamp?
        var hosts = HostsFile()
        var hostsStamp: FileStamp?
        /// `options rotate`: where the next query starts in the nameserver list.
        var rotation = 0
    }

    let options: DNSResolverOptions
    let state: Locked<State>

    /// Creates a resolver; files are read now and again whenever they change.
    public init(options: DNSResolverOptions = DNSResolverOptions()) {
        self.options = options
        state = Locked(
            State(
                cache: DNSCache(maxTTL: options.maxTTL, minTTL: options.minTTL),
                resolvConf: ResolvConf.parse("", environment: options.environment, hostname: options.hostname)))
        state.withLock { refreshFiles(&$0) }
    }

    /// Resolves `name` to its AAAA and A records. IP literals (brackets allowed) are returned
    /// as they are; /etc/hosts answers before DNS (glibc's `hosts: files dns`), for the name as
    /// given; then the cache, keyed by the name as given; then the nameservers, for each of the
    /// search list's candidates in turn (`SearchList`, `SearchWalk`). `DNSAnswer.fqdn` says which
    /// candidate answered.
    public func lookup(_ name: String) -> Result<DNSAnswer, ResolverError> {
        if let literal = IPAddress(name) {
            state.withLock { $0.counters.lookups += 1 }
            switch literal.unmapped {
            case .v4(let ipv4):
                return .success(DNSAnswer(name: name, ipv6: [], ipv4: [ipv4], ipv6TTL: nil, ipv4TTL: nil,
                                          source: .literal, literal: .ipv4))
            case .v6(let ipv6):
                return .success(DNSAnswer(name: name, ipv6: [ipv6], ipv4: [], ipv6TTL: nil, ipv4TTL: nil,
                                          source: .literal, literal: .ipv6))
            }
        }
        guard let normalized = DNSMessage.normalize(name) else {
            return .failure(ResolverError(code: .invalidName, name: name))
        }
        let key = Self.cacheKey(name, normalized: normalized)
        let now = options.clock.now()
        let early: Result<DNSAnswer, ResolverError>? = state.withLock { state in
            state.counters.lookups += 1
            refreshFiles(&state)
            // hosts(5) entries carry no TTL: `hostsTTL` is reported, and the file is re-read
            // when its mtime or size changes, so an edit takes effect on the next lookup.
            if let hosts = state.hosts.lookup(normalized) {
                state.counters.hostsHits += 1
                return .success(DNSAnswer(
                    name: normalized, ipv6: hosts.ipv6, ipv4: hosts.ipv4,
                    ipv6TTL: hosts.ipv6.isEmpty ? nil : options.hostsTTL,
                    ipv4TTL: hosts.ipv4.isEmpty ? nil : options.hostsTTL, source: .hosts))
            }
            if let cached = state.cache.lookup(key, now: now) {
                state.counters.cacheHits += 1
                return cached
            }
            return nil
        }
        if let early { return early }
        return search(normalized, absolute: name.hasSuffix("."), key: key)
    }

    /// Drops `name` from the cache so the next lookup asks DNS again (after a failed dial).
    public func invalidate(_ name: String) {
        guard let normalized = DNSMessage.normalize(name) else { return }
        let key = Self.cacheKey(name, normalized: normalized)
        state.withLock { $0.cache.invalidate(key) }
    }

    /// The cache key: the name as given, normalized, keeping a trailing dot, because `db.prod`
    /// and `db.prod.` walk different candidate lists.
    static func cacheKey(_ name: String, normalized: String) -> String {
        name.hasSuffix(".") ? normalized + "." : normalized
    }

    /// Empties the cache (SIGHUP).
    public func invalidateAll() {
        state.withLock { $0.cache.removeAll() }
    }

    /// The live cache entries, sorted by name.
    public func cacheSnapshot() -> [DNSCacheEntrySnapshot] {
        let now = options.clock.now()
        return state.withLock { $0.cache.snapshot(now: now) }
    }

    /// The counters so far.
    public var counters: DNSResolverCounters {
        state.withLock { $0.counters }
    }

    /// The nameservers, timeout, attempts and search list in force.
    public var configuration: ResolvConf {
        state.withLock { state in
            refreshFiles(&state)
            return effectiveConfiguration(state.resolvConf)
        }
    }

    func effectiveConfiguration(_ file: ResolvConf) -> ResolvConf {
        ResolvConf(
            nameservers: options.nameservers ?? file.nameservers,
            timeoutMilliseconds: options.timeoutMilliseconds ?? file.timeoutMilliseconds,
            attempts: options.attempts ?? file.attempts, searchList: file.searchList, rotate: file.rotate)
    }

    // Called with the lock held: a stat(2) per lookup is cheap next to a DNS round trip.
    func refreshFiles(_ state: inout State) {
        let resolvStamp = Self.stamp(options.resolvConfPath)
        if resolvStamp != state.resolvConfStamp {
            state.resolvConfStamp = resolvStamp
            let parsed = ResolvConf.parse(
                Self.readFile(options.resolvConfPath) ?? "", environment: options.environment,
                hostname: options.hostname)
            // A new search list or nameserver set can change what a cached name stands for.
            if parsed != state.resolvConf { state.cache.removeAll() }
            state.resolvConf = parsed
        }
        guard let hostsPath = options.hostsPath else { return }
        let hostsStamp = Self.stamp(hostsPath)
        if hostsStamp != state.hostsStamp {
            state.hostsStamp = hostsStamp
            state.hosts = HostsFile.parse(Self.readFile(hostsPath) ?? "")
        }
    }

    private static func stamp(_ path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        let time = info.st_mtimespec
        #else
        let time = info.st_mtim
        #endif
        return FileStamp(seconds: Int(time.tv_sec), nanoseconds: Int(time.tv_nsec), size: Int(info.st_size))
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while bytes.count < 4 << 20 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
