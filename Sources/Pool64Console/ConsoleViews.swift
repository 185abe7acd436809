import Foundation
import Pool64Stats

/// The SHOW views, with PgBouncer's column names, order, units (microseconds, bytes) and type OIDs, as of
/// PgBouncer 1.18 plus the columns its current documentation adds; pool64's own columns come last. Columns pool64
/// has no equivalent for are 0 or NULL (docs/OPERATIONS.md lists them).
public enum ConsoleViews {
    public static let names = [
        "HELP", "POOLS", "STATS", "STATS_TOTALS", "STATS_AVERAGES", "TOTALS", "CLIENTS", "SERVERS", "DATABASES",
        "USERS", "CONFIG", "LISTS", "DNS_HOSTS", "DNS_ZONES", "MEM", "STATE", "VERSION", "ROUTES",
    ]

    typealias T = ConsoleResult.ColumnType

    /// The view named `name` (upper case), or nil when there is none.
    public static func render(_ name: String, _ s: ConsoleSnapshot, version: String) -> ConsoleResult? {
        switch name {
        case "HELP": return help()
        case "POOLS": return pools(s)
        case "STATS": return stats(s)
        case "STATS_TOTALS": return statsTotals(s)
        case "STATS_AVERAGES": return statsAverages(s)
        case "TOTALS": return totals(s)
        case "CLIENTS": return connections(s, clients: true)
        case "SERVERS": return connections(s, clients: false)
        case "DATABASES": return databases(s)
        case "USERS": return users(s)
        case "CONFIG": return config(s)
        case "LISTS": return lists(s)
        case "DNS_HOSTS": return dnsHosts(s)
        case "DNS_ZONES":
            return ConsoleResult(columns: [("zonename", .text), ("serial", .int8), ("count", .int4)], rows: [])
        case "MEM": return mem(s)
        case "STATE": return state(s)
        case "VERSION": return ConsoleResult(columns: [("version", .text)], rows: [[version]])
        case "ROUTES": return routes(s)
        default: return nil
        }
    }

    static func help() -> ConsoleResult {
        var r = ConsoleResult(columns: [], rows: [])
        r.notices = [
            """
            Console usage
            \tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION
            \tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS|LISTS|MEM|STATE|ROUTES
            \tSHOW DNS_HOSTS|DNS_ZONES
            \tSET key = arg
            \tRELOAD
            \tPAUSE [<db>]
            \tRESUME [<db>]
            \tDISABLE <db>
            \tENABLE <db>
            \tRECONNECT [<db>]
            \tKILL <db>
            \tKILL_CLIENT <id>
            \tWAIT_CLOSE [<db>]
            \tSHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS]
            """
        ]
        return r
    }

    static func pools(_ s: ConsoleSnapshot) -> ConsoleResult {
        ConsoleResult(
            columns: [
                ("database", .text), ("user", .text), ("cl_active", .int4), ("cl_waiting", .int4),
                ("cl_active_cancel_req", .int4), ("cl_waiting_cancel_req", .int4), ("sv_active", .int4),
                ("sv_active_cancel", .int4), ("sv_being_canceled", .int4), ("sv_idle", .int4), ("sv_used", .int4),
                ("sv_tested", .int4), ("sv_login", .int4), ("maxwait", .int4), ("maxwait_us", .int4),
                ("pool_mode", .text), ("route", .text), ("server_address", .text), ("nat64_prefix", .text),
            ],
            rows: s.stats.pools.map { p in
                [
                    p.database, p.user, "\(p.clActive + p.clIdle)", "\(p.clWaiting)", "0", "0", "\(p.svActive)", "0",
                    "0", "\(p.svIdle)", "\(p.svUsed)", "0", "\(p.svLogin)", "\(p.maxwaitUs / 1_000_000)",
                    "\(p.maxwaitUs % 1_000_000)", p.poolMode, p.route, p.serverAddress,
                    p.route == "nat64" ? s.stats.resolver.nat64Prefix : nil,
                ]
            })
    }

    /// Per database, summed over its pools.
    struct DatabaseTotals {
        var xacts: UInt64 = 0, queries: UInt64 = 0, received: UInt64 = 0, sent: UInt64 = 0
        var xactTime: UInt64 = 0, queryTime: UInt64 = 0, waitTime: UInt64 = 0

        mutating func add(_ o: DatabaseTotals) {
            xacts &+= o.xacts
            queries &+= o.queries
            received &+= o.received
            sent &+= o.sent
            xactTime &+= o.xactTime
            queryTime &+= o.queryTime
            waitTime &+= o.waitTime
        }
    }

    static func byDatabase(_ s: ConsoleSnapshot) -> [(String, DatabaseTotals)] {
        var out: [String: DatabaseTotals] = [:]
        for p in s.stats.pools {
            out[p.database, default: DatabaseTotals()].add(
                DatabaseTotals(
                    xacts: p.totalXactCount, queries: p.totalQueryCount, received: p.totalReceived, sent: p.totalSent,
                    xactTime: p.totalXactTimeUs, queryTime: p.totalQueryTimeUs, waitTime: p.totalWaitTimeUs))
        }
        return out.sorted { $0.key < $1.key }
    }

    /// Averages as pool64 computes them: rates per second over the process's uptime, and times per transaction or
    /// query (PgBouncer averages over its last 15-second stats period, which pool64 does not keep).
    static func averages(_ t: DatabaseTotals, uptime: Double) -> [String] {
        let secs = max(uptime, 1)
        func rate(_ v: UInt64) -> String { "\(UInt64(Double(v) / secs))" }
        func per(_ v: UInt64, _ n: UInt64) -> String { n == 0 ? "0" : "\(v / n)" }
        return [
            rate(t.xacts), rate(t.queries), rate(t.received), rate(t.sent), per(t.xactTime, t.xacts),
            per(t.queryTime, t.queries), per(t.waitTime, max(t.xacts, 1)),
        ]
    }

    static func totalsRow(_ t: DatabaseTotals) -> [String] {
        ["\(t.xacts)", "\(t.queries)", "\(t.received)", "\(t.sent)", "\(t.xactTime)", "\(t.queryTime)", "\(t.waitTime)"]
    }

    static func stats(_ s: ConsoleSnapshot) -> ConsoleResult {
        let names = [
            "total_xact_count", "total_query_count", "total_received", "total_sent", "total_xact_time",
            "total_query_time", "total_wait_time", "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
            "avg_xact_time", "avg_query_time", "avg_wait_time",
        ]
        // total_requests is PgBouncer's name before 1.8 (= total_query_count); exporters of that age read it.
        return ConsoleResult(
            columns: [("database", .text)] + names.map { ($0, .int8) } + [("total_requests", .int8)],
            rows: byDatabase(s).map { db, t in
                [db] + totalsRow(t) + averages(t, uptime: s.stats.process.uptimeSeconds) + ["\(t.queries)"]
            })
    }

    static let totalsColumns = [
        "xact_count", "query_count", "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
    ]

    static func statsTotals(_ s: ConsoleSnapshot) -> ConsoleResult {
        ConsoleResult(
            columns: [("database", .text)] + totalsColumns.map { ($0, .int8) },
            rows: byDatabase(s).map { db, t in [db] + totalsRow(t) })
    }

    static func statsAverages(_ s: ConsoleSnapshot) -> ConsoleResult {
        ConsoleResult(
            columns: [("database", .text)] + totalsColumns.map { ($0, .int8) },
            rows: byDatabase(s).map { db, t in [db] + averages(t, uptime: s.stats.process.uptimeSeconds) })
    }

    static func totals(_ s: ConsoleSnapshot) -> ConsoleResult {
        var all = DatabaseTotals()
        for (_, t) in byDatabase(s) { all.add(t) }
        let values = totalsRow(all) + averages(all, uptime: s.stats.process.uptimeSeconds)
        let names = totalsColumns.map { "total_\($0)" } + totalsColumns.map { "avg_\($0)" }
        return ConsoleResult(
            columns: [("name", .text), ("value", .int8)], rows: zip(names, values).map { [$0, $1] })
    }

    static func time(_ epoch: Double) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return f.string(from: Date(timeIntervalSince1970: epoch))
    }

    /// SHOW CLIENTS and SHOW SERVERS share PgBouncer's columns; `ptr` and `link` are pool64's ids (no pointers).
    static func connections(_ s: ConsoleSnapshot, clients: Bool) -> ConsoleResult {
        var columns: [(String, T)] = [
            ("type", .text), ("user", .text), ("database", .text), ("state", .text), ("addr", .text), ("port", .int4),
            ("local_addr", .text), ("local_port", .int4), ("connect_time", .text), ("request_time", .text),
            ("wait", .int4), ("wait_us", .int4), ("close_needed", .int4), ("ptr", .text), ("link", .text),
            ("remote_pid", .int4), ("tls", .text), ("application_name", .text), ("prepared_statements", .int4),
            ("id", .int8),
        ]
        if clients {
            columns.append(("pinned", .int4))
            return ConsoleResult(
                columns: columns,
                rows: s.clients.map { c in
                    [
                        "C", c.user, c.database, c.state, c.address, "\(c.port)", c.localAddress, "\(c.localPort)",
                        time(c.connectTime), time(c.requestTime), "\(c.waitMicros / 1_000_000)",
                        "\(c.waitMicros % 1_000_000)", "0", "c\(c.id)", c.serverID.map { "s\($0)" }, "0", c.tls,
                        c.applicationName, "\(c.preparedStatements)", "\(c.id)", c.pinned ? "1" : "0",
                    ]
                })
        }
        columns.append(("route", .text))
        return ConsoleResult(
            columns: columns,
            rows: s.servers.map { v in
                [
                    "S", v.user, v.database, v.state, v.address, "\(v.port)", v.localAddress, "\(v.localPort)",
                    time(v.connectTime), time(v.requestTime), "0", "0", v.closeNeeded ? "1" : "0", "s\(v.id)",
                    v.clientID.map { "c\($0)" }, "\(v.remotePID)", v.tls, v.applicationName,
                    "\(v.preparedStatements)", "\(v.id)", v.route,
                ]
            })
    }

    static func databases(_ s: ConsoleSnapshot) -> ConsoleResult {
        ConsoleResult(
            columns: [
                ("name", .text), ("host", .text), ("port", .int4), ("database", .text), ("force_user", .text),
                ("pool_size", .int4), ("min_pool_size", .int4), ("reserve_pool", .int4), ("pool_mode", .text),
                ("max_connections", .int4), ("current_connections", .int4), ("paused", .int4), ("disabled", .int4),
            ],
            rows: s.databases.map { d in
                [
                    d.name, d.host, "\(d.port)", d.serverDatabase, nil, "\(d.poolSize)", "\(d.minPoolSize)", "0",
                    d.poolMode, "0", "\(d.currentConnections)", d.paused ? "1" : "0", d.disabled ? "1" : "0",
                ]
            })
    }

    static func users(_ s: ConsoleSnapshot) -> ConsoleResult {
        let names = Set(s.stats.pools.map(\.user)).sorted()
        return ConsoleResult(
            columns: [("name", .text), ("pool_mode", .text)],
            rows: names.map { [$0, nil] })
    }

    static func config(_ s: ConsoleSnapshot) -> ConsoleResult {
        ConsoleResult(
            columns: [("key", .text), ("value", .text), ("default", .text), ("changeable", .text)],
            rows: s.config.map { [$0.key, $0.value, $0.defaultValue, $0.changeable ? "yes" : "no"] })
    }

    static func lists(_ s: ConsoleSnapshot) -> ConsoleResult {
        let login = s.clients.filter { $0.state == "login" }.count
        let used = s.servers.filter { $0.state != "idle" }.count
        let rows: [(String, Int)] = [
            ("databases", s.databases.count), ("users", Set(s.stats.pools.map(\.user)).count),
            ("pools", s.stats.pools.count), ("free_clients", 0), ("used_clients", s.clients.count - login),
            ("login_clients", login), ("free_servers", 0), ("used_servers", used),
            ("dns_names", s.stats.resolver.cache.count), ("dns_zones", 0), ("dns_queries", 0), ("dns_pending", 0),
        ]
        return ConsoleResult(columns: [("list", .text), ("items", .int4)], rows: rows.map { [$0.0, "\($0.1)"] })
    }

    static func dnsHosts(_ s: ConsoleSnapshot) -> ConsoleResult {
        ConsoleResult(
            columns: [("hostname", .text), ("ttl", .int8), ("addrs", .text)],
            rows: s.stats.resolver.cache.map { e in
                [e.name, "\(Int(e.ttlRemainingSeconds))", e.addresses.joined(separator: ",")]
            })
    }

    static func mem(_ s: ConsoleSnapshot) -> ConsoleResult {
        // PgBouncer lists its slab caches; pool64 has none. The rows name the same objects with pool64's measured
        // per-object cost (docs/PERFORMANCE.md: ~0.9 KiB per idle client) as size, so totals are estimates.
        let rows: [(String, Int, Int)] = [
            ("client_cache", 900, s.clients.count), ("server_cache", 4096, s.servers.count),
            ("pool_cache", 2048, s.stats.pools.count), ("db_cache", 256, s.databases.count),
        ]
        return ConsoleResult(
            columns: [("name", .text), ("size", .int4), ("used", .int4), ("free", .int4), ("memtotal", .int4)],
            rows: rows.map { [$0.0, "\($0.1)", "\($0.2)", "0", "\($0.1 * $0.2)"] })
    }

    static func state(_ s: ConsoleSnapshot) -> ConsoleResult {
        let paused = !s.databases.isEmpty && s.databases.allSatisfy(\.paused)
        return ConsoleResult(
            columns: [("key", .text), ("value", .text)],
            rows: [
                ["active", paused || s.stats.process.draining ? "no" : "yes"], ["paused", paused ? "yes" : "no"],
                ["suspended", "no"], ["draining", s.stats.process.draining ? "yes" : "no"],
            ])
    }

    /// The resolver's view, and the bytes relayed over each route (to price NAT64 gateway traffic).
    static func routes(_ s: ConsoleSnapshot) -> ConsoleResult {
        var bytes: [String: UInt64] = [:]
        for p in s.stats.pools where !p.route.isEmpty { bytes[p.route, default: 0] &+= p.totalReceived &+ p.totalSent }
        var rows: [[String?]] = s.stats.resolver.cache.map { e in
            let family = e.addresses.first.map { $0.contains(":") ? "ipv6" : "ipv4" } ?? ""
            return [
                e.name, family, e.addresses.joined(separator: ","), "dns", "\(Int(e.ttlRemainingSeconds))",
                e.negative ? "no address" : nil, nil, nil,
            ]
        }
        for p in s.stats.pools where !p.route.isEmpty {
            rows.append([
                "\(p.database)/\(p.user)", p.serverAddress.contains("[") || p.serverAddress.filter({ $0 == ":" }).count > 1
                    ? "ipv6" : "ipv4", p.serverAddress, "pool", nil, nil, p.route, "\(bytes[p.route] ?? 0)",
            ])
        }
        return ConsoleResult(
            columns: [
                ("name", .text), ("family", .text), ("address", .text), ("source", .text), ("ttl", .int8),
                ("last_error", .text), ("route", .text), ("route_bytes", .int8),
            ],
            rows: rows)
    }
}
