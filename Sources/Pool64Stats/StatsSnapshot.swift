/// A point-in-time copy of everything pool64 reports, taken on the proxy event loop and rendered by the admin server
/// as JSON (`/stats`) and Prometheus text (`/metrics`). Field names follow PgBouncer's `SHOW POOLS` / `SHOW STATS`
/// so operators recognise them.
public struct StatsSnapshot: Codable, Sendable, Equatable {
    /// Facts about the process.
    public var process: ProcessInfoSnapshot
    /// One entry per (database, user) pool.
    public var pools: [PoolSnapshot]
    /// Resolver cache and NAT64 state.
    public var resolver: ResolverSnapshot
    /// Process-wide counters not tied to a pool (rejected clients, protocol errors…).
    public var totals: GlobalCounters

    public init(
        process: ProcessInfoSnapshot, pools: [PoolSnapshot], resolver: ResolverSnapshot, totals: GlobalCounters
    ) {
        self.process = process
        self.pools = pools
        self.resolver = resolver
        self.totals = totals
    }
}

/// Version, identity and listeners of this pool64 process.
public struct ProcessInfoSnapshot: Codable, Sendable, Equatable {
    public var version: String
    public var project: String
    public var uptimeSeconds: Double
    public var listeners: [String]
    public var adminListeners: [String]
    public var draining: Bool
    public var poolMode: String

    public init(
        version: String, project: String, uptimeSeconds: Double, listeners: [String], adminListeners: [String],
        draining: Bool, poolMode: String
    ) {
        self.version = version
        self.project = project
        self.uptimeSeconds = uptimeSeconds
        self.listeners = listeners
        self.adminListeners = adminListeners
        self.draining = draining
        self.poolMode = poolMode
    }

    enum CodingKeys: String, CodingKey {
        case version, project, listeners, draining
        case uptimeSeconds = "uptime_seconds"
        case adminListeners = "admin_listeners"
        case poolMode = "pool_mode"
    }
}

/// Latency percentiles in microseconds, computed from a histogram kept where the events happen, plus what a
/// Prometheus histogram needs: the sum and cumulative counts at `bucketBoundsMicros` (the relay records each event
/// once, into its own histogram; `/metrics` is rendered from these, so no metrics backend runs per transaction).
public struct LatencyPercentiles: Codable, Sendable, Equatable {
    public var count: UInt64
    public var p50: Double
    public var p95: Double
    public var p99: Double
    /// Sum of all recorded values (µs).
    public var sumMicros: UInt64?
    /// Events at or below each bound of `bucketBoundsMicros` (cumulative; within the histogram's ≤ 6% resolution).
    public var cumulativeBuckets: [UInt64]?

    /// Upper bounds of the exported buckets, µs: 100 µs … 10 s.
    public static let bucketBoundsMicros: [UInt64] = [
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
        2_500_000, 5_000_000, 10_000_000,
    ]

    public init(
        count: UInt64 = 0, p50: Double = 0, p95: Double = 0, p99: Double = 0, sumMicros: UInt64? = nil,
        cumulativeBuckets: [UInt64]? = nil
    ) {
        self.count = count
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
        self.sumMicros = sumMicros
        self.cumulativeBuckets = cumulativeBuckets
    }

    enum CodingKeys: String, CodingKey {
        case count, p50, p95, p99
        case sumMicros = "sum_us"
        case cumulativeBuckets = "cumulative_buckets"
    }
}

/// One pool: PgBouncer's SHOW POOLS and SHOW STATS fields plus route, percentiles and errors.
public struct PoolSnapshot: Codable, Sendable, Equatable {
    public var database: String
    public var user: String
    public var poolMode: String
    // SHOW POOLS
    public var clActive: Int
    public var clWaiting: Int
    public var clIdle: Int
    public var svActive: Int
    public var svIdle: Int
    public var svUsed: Int
    public var svLogin: Int
    public var maxwaitUs: UInt64
    public var poolSize: Int
    public var pinnedClients: Int
    // SHOW STATS totals
    public var totalXactCount: UInt64
    public var totalQueryCount: UInt64
    public var totalReceived: UInt64
    public var totalSent: UInt64
    public var totalXactTimeUs: UInt64
    public var totalQueryTimeUs: UInt64
    public var totalWaitTimeUs: UInt64
    public var totalServerConnections: UInt64
    public var serverConnectFailures: UInt64
    // What PgBouncer lacks
    public var xactLatency: LatencyPercentiles
    public var waitLatency: LatencyPercentiles
    /// `ipv6`, `nat64`, `ipv4`, or `unknown` before the first dial.
    public var route: String
    /// Address (and port) of the server connections in use, e.g. `[64:ff9b::6440:20a]:5432`.
    public var serverAddress: String
    public var addressesTried: [String]
    /// ErrorResponses relayed or sent, by SQLSTATE class (first two characters).
    public var errorsBySqlstateClass: [String: UInt64]

    public init(database: String, user: String, poolMode: String) {
        self.database = database
        self.user = user
        self.poolMode = poolMode
        clActive = 0
        clWaiting = 0
        clIdle = 0
        svActive = 0
        svIdle = 0
        svUsed = 0
        svLogin = 0
        maxwaitUs = 0
        poolSize = 0
        pinnedClients = 0
        totalXactCount = 0
        totalQueryCount = 0
        totalReceived = 0
        totalSent = 0
        totalXactTimeUs = 0
        totalQueryTimeUs = 0
        totalWaitTimeUs = 0
        totalServerConnections = 0
        serverConnectFailures = 0
        xactLatency = LatencyPercentiles()
        waitLatency = LatencyPercentiles()
        route = "unknown"
        serverAddress = ""
        addressesTried = []
        errorsBySqlstateClass = [:]
    }

    enum CodingKeys: String, CodingKey {
        case database, user, route
        case poolMode = "pool_mode"
        case clActive = "cl_active"
        case clWaiting = "cl_waiting"
        case clIdle = "cl_idle"
        case svActive = "sv_active"
        case svIdle = "sv_idle"
        case svUsed = "sv_used"
        case svLogin = "sv_login"
        case maxwaitUs = "maxwait_us"
        case poolSize = "pool_size"
        case pinnedClients = "pinned_clients"
        case totalXactCount = "total_xact_count"
        case totalQueryCount = "total_query_count"
        case totalReceived = "total_received"
        case totalSent = "total_sent"
        case totalXactTimeUs = "total_xact_time"
        case totalQueryTimeUs = "total_query_time"
        case totalWaitTimeUs = "total_wait_time"
        case totalServerConnections = "total_server_connections"
        case serverConnectFailures = "server_connect_failures"
        case xactLatency = "xact_latency_us"
        case waitLatency = "wait_latency_us"
        case serverAddress = "server_address"
        case addressesTried = "addresses_tried"
        case errorsBySqlstateClass = "errors_by_sqlstate_class"
    }
}

/// Resolver and NAT64 state.
public struct ResolverSnapshot: Codable, Sendable, Equatable {
    /// `ipv6-first`, `ipv4` or `ipv6-only`.
    public var policy: String
    /// The NAT64 prefix in use (`64:ff9b::/96`), or empty when off / not found.
    public var nat64Prefix: String
    /// `configured`, `discovered` (RFC 7050), `off`, or `not-found`.
    public var nat64Source: String
    public var cache: [ResolverCacheEntry]
    public var attemptsByFamily: [String: UInt64]
    public var failuresByFamily: [String: UInt64]

    public init(
        policy: String = "ipv6-first", nat64Prefix: String = "", nat64Source: String = "off",
        cache: [ResolverCacheEntry] = [], attemptsByFamily: [String: UInt64] = [:],
        failuresByFamily: [String: UInt64] = [:]
    ) {
        self.policy = policy
        self.nat64Prefix = nat64Prefix
        self.nat64Source = nat64Source
        self.cache = cache
        self.attemptsByFamily = attemptsByFamily
        self.failuresByFamily = failuresByFamily
    }

    enum CodingKeys: String, CodingKey {
        case policy, cache
        case nat64Prefix = "nat64_prefix"
        case nat64Source = "nat64_source"
        case attemptsByFamily = "attempts_by_family"
        case failuresByFamily = "failures_by_family"
    }
}

/// One cached resolver answer.
public struct ResolverCacheEntry: Codable, Sendable, Equatable {
    public var name: String
    /// The search-list name that answered (`db.prod` → `db.prod.svc.cluster.local`); nil, and left out of the JSON,
    /// when it is the name itself.
    public var fqdn: String?
    public var addresses: [String]
    public var ttlRemainingSeconds: Double
    public var negative: Bool

    public init(name: String, addresses: [String], ttlRemainingSeconds: Double, negative: Bool, fqdn: String? = nil) {
        self.name = name
        self.fqdn = fqdn
        self.addresses = addresses
        self.ttlRemainingSeconds = ttlRemainingSeconds
        self.negative = negative
    }

    enum CodingKeys: String, CodingKey {
        case name, fqdn, addresses, negative
        case ttlRemainingSeconds = "ttl_remaining_seconds"
    }
}

/// Process-wide counters.
public struct GlobalCounters: Codable, Sendable, Equatable {
    public var clientsAccepted: UInt64
    public var clientsRejected: UInt64
    public var clientsCurrent: Int
    public var protocolErrors: UInt64
    public var authFailures: UInt64
    public var closeReasons: [String: UInt64]
    /// CancelRequests for a predecessor's clients, sent on to it after a listener hand-over.
    public var cancelsForwarded: UInt64

    public init(
        clientsAccepted: UInt64 = 0, clientsRejected: UInt64 = 0, clientsCurrent: Int = 0, protocolErrors: UInt64 = 0,
        authFailures: UInt64 = 0, closeReasons: [String: UInt64] = [:], cancelsForwarded: UInt64 = 0
    ) {
        self.clientsAccepted = clientsAccepted
        self.clientsRejected = clientsRejected
        self.clientsCurrent = clientsCurrent
        self.protocolErrors = protocolErrors
        self.authFailures = authFailures
        self.closeReasons = closeReasons
        self.cancelsForwarded = cancelsForwarded
    }

    enum CodingKeys: String, CodingKey {
        case cancelsForwarded = "cancels_forwarded"
        case clientsAccepted = "clients_accepted"
        case clientsRejected = "clients_rejected"
        case clientsCurrent = "clients_current"
        case protocolErrors = "protocol_errors"
        case authFailures = "auth_failures"
        case closeReasons = "close_reasons"
    }
}

/// Whether pool64 can serve queries right now, and why not.
public struct Readiness: Codable, Sendable, Equatable {
    public var ready: Bool
    public var reason: String?

    public init(ready: Bool, reason: String? = nil) {
        self.ready = ready
        self.reason = reason
    }
}
