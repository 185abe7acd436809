import Prometheus

extension PrometheusExporter {
    /// A metric the exporter derives from ``StatsSnapshot``: its full name and help text. Help text must be the same
    /// every time a name is registered, which is why both live in one table.
    public struct MetricName: Sendable, Hashable {
        /// The full Prometheus name, e.g. `pool64_cl_active`.
        public let name: String
        /// The `# HELP` text.
        public let help: String
        /// Whether counter deltas are whole numbers (counts and bytes) rather than seconds.
        let integral: Bool

        init(_ name: String, _ help: String, integral: Bool = true) {
            self.name = "pool64_" + name
            self.help = help
            self.integral = integral
        }

        var descriptor: MetricNameDescriptor {
            MetricNameDescriptor(metricName: self.name, unitName: "", helpText: self.help)
        }

        // Process
        /// Always 1; labels carry `version` and `pool_mode`.
        public static let info = MetricName("info", "pool64 build and mode; always 1")
        /// Seconds since the process started.
        public static let uptimeSeconds = MetricName("uptime_seconds", "Seconds since pool64 started")
        /// 1 while draining after SIGTERM, else 0.
        public static let draining = MetricName("draining", "1 while draining (SIGTERM received), else 0")
        /// Connected clients across all pools.
        public static let clientsCurrent = MetricName("clients_current", "Client connections open now")

        // Per pool (labels database, user), named after PgBouncer's SHOW POOLS
        /// Clients linked to a server connection.
        public static let clActive = MetricName("cl_active", "Clients paired with a server connection")
        /// Clients waiting for a server connection.
        public static let clWaiting = MetricName("cl_waiting", "Clients waiting for a server connection")
        /// Clients idle between transactions.
        public static let clIdle = MetricName("cl_idle", "Clients connected and idle")
        /// Server connections leased to a client.
        public static let svActive = MetricName("sv_active", "Server connections linked to a client")
        /// Server connections idle and ready.
        public static let svIdle = MetricName("sv_idle", "Server connections idle and ready for use")
        /// Server connections idle but needing a reset before reuse.
        public static let svUsed = MetricName("sv_used", "Server connections idle, awaiting reset before reuse")
        /// Server connections still connecting or authenticating.
        public static let svLogin = MetricName("sv_login", "Server connections in login")
        /// Age of the oldest waiting client.
        public static let maxwaitSeconds = MetricName("maxwait_seconds", "Wait time of the oldest waiting client")
        /// Clients pinned to a server connection (session state in transaction mode).
        public static let pinnedClients = MetricName("pinned_clients", "Clients pinned to one server connection")
        /// Configured maximum server connections.
        public static let poolSize = MetricName("pool_size", "Configured maximum server connections of the pool")
        /// Always 1; labels carry `route` (`ipv6`, `nat64`, `ipv4`, `unknown`), `server_address` and `pool_mode`.
        public static let poolRoute = MetricName("pool_route_info", "Route and server address of the pool; always 1")
        /// Transaction latency percentiles (label `quantile`).
        public static let xactLatencySeconds = MetricName(
            "xact_latency_seconds", "Transaction latency percentiles", integral: false)
        /// Wait-for-server latency percentiles (label `quantile`).
        public static let waitLatencySeconds = MetricName(
            "wait_latency_seconds", "Client wait-for-server latency percentiles", integral: false)

        // Per pool counters, named after PgBouncer's SHOW STATS totals
        /// Transactions completed (`total_xact_count`).
        public static let xactsTotal = MetricName("xact_count_total", "Transactions pooled (total_xact_count)")
        /// Queries completed (`total_query_count`).
        public static let queriesTotal = MetricName("query_count_total", "Queries pooled (total_query_count)")
        /// Bytes received from clients (`total_received`).
        public static let receivedBytesTotal = MetricName(
            "received_bytes_total", "Bytes received from clients (total_received)")
        /// Bytes sent to clients (`total_sent`).
        public static let sentBytesTotal = MetricName("sent_bytes_total", "Bytes sent to clients (total_sent)")
        /// Time spent in transactions (`total_xact_time`).
        public static let xactTimeSecondsTotal = MetricName(
            "xact_time_seconds_total", "Time spent in transactions (total_xact_time)", integral: false)
        /// Time spent in queries (`total_query_time`).
        public static let queryTimeSecondsTotal = MetricName(
            "query_time_seconds_total", "Time spent in queries (total_query_time)", integral: false)
        /// Time clients spent waiting for a server (`total_wait_time`).
        public static let waitTimeSecondsTotal = MetricName(
            "wait_time_seconds_total", "Time clients waited for a server (total_wait_time)", integral: false)
        /// Server connections opened.
        public static let serverConnectionsTotal = MetricName(
            "server_connections_total", "Server connections opened")
        /// Server connection attempts that failed.
        public static let serverConnectFailuresTotal = MetricName(
            "server_connect_failures_total", "Server connection attempts that failed")
        /// ErrorResponses by SQLSTATE class (label `sqlstate_class`).
        public static let errorsTotal = MetricName("errors_total", "ErrorResponses sent or relayed, by SQLSTATE class")

        // Process-wide counters
        /// Client connections accepted.
        public static let clientsAcceptedTotal = MetricName("clients_accepted_total", "Client connections accepted")
        /// Client connections refused (limits, draining).
        public static let clientsRejectedTotal = MetricName("clients_rejected_total", "Client connections refused")
        /// Malformed or unexpected client messages.
        public static let protocolErrorsTotal = MetricName("protocol_errors_total", "Client protocol violations")
        /// Failed client authentications.
        public static let authFailuresTotal = MetricName("auth_failures_total", "Failed client authentications")
        /// CancelRequests forwarded to the process the listeners were taken from.
        public static let cancelsForwardedTotal = MetricName(
            "cancels_forwarded_total", "Cancel requests forwarded to the predecessor after a listener hand-over")
        /// Client connections closed, by reason (label `reason`).
        public static let clientClosesTotal = MetricName("client_closes_total", "Client connections closed, by reason")

        // Resolver
        /// Entries in the resolver cache.
        public static let resolverCacheEntries = MetricName("resolver_cache_entries", "Entries in the resolver cache")
        /// Always 1; labels carry `policy`, `nat64_prefix` and `nat64_source`.
        public static let resolverInfo = MetricName("resolver_info", "Resolver policy and NAT64 prefix; always 1")
        /// Connection attempts by address family (label `family`).
        public static let resolverAttemptsTotal = MetricName(
            "resolver_attempts_total", "Connection attempts by address family")
        /// Failed connection attempts by address family (label `family`).
        public static let resolverFailuresTotal = MetricName(
            "resolver_failures_total", "Failed connection attempts by address family")

        /// Histogram names rendered by `PrometheusExporter.emitHistograms` (not through the registry).
        public static let transactionDuration = "pool64_transaction_duration_seconds"
        public static let clientWaitDuration = "pool64_client_wait_duration_seconds"

        /// Every metric the exporter can produce.
        public static let all: [MetricName] = [
            info, uptimeSeconds, draining, clientsCurrent, clActive, clWaiting, clIdle, svActive, svIdle, svUsed,
            svLogin, maxwaitSeconds, pinnedClients, poolSize, poolRoute, xactLatencySeconds, waitLatencySeconds,
            xactsTotal, queriesTotal, receivedBytesTotal, sentBytesTotal, xactTimeSecondsTotal, queryTimeSecondsTotal,
            waitTimeSecondsTotal, serverConnectionsTotal, serverConnectFailuresTotal, errorsTotal,
            clientsAcceptedTotal, clientsRejectedTotal, protocolErrorsTotal, authFailuresTotal, clientClosesTotal,
            cancelsForwardedTotal, resolverCacheEntries, resolverInfo, resolverAttemptsTotal, resolverFailuresTotal,
        ]
    }
}
