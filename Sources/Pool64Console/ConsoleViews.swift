import Foundation
import Glibc
import Pool64Stats

/// The SHOW views, with PgBouncer's column names, order, units (microseconds, bytes) and type OIDs. Each view starts
/// with exactly PgBouncer 1.18's columns (what exporters written against it read, by name or position), then the
/// columns PgBouncer's current documentation adds that 1.18 lacks (appended rather than inserted where current
/// PgBouncer inserts them, e.g. `total_server_assignment_count`, `replication`), then pool64's own. Columns pool64
/// has no equivalent for are 0 or NULL (docs/OPERATIONS.md lists them).
public enum ConsoleViews {
    public static let names = [
        "HELP", "POOLS", "STATS", "STATS_TOTALS", "STATS_AVERAGES", "TOTALS", "CLIENTS", "SERVERS", "DATABASES",
        "USERS", "CONFIG", "LISTS", "DNS_HOSTS", "DNS_ZONES", "MEM", "STATE", "VERSION", "ROUTES",
    ]

    typealias T = ConsoleResult.ColumnType

    /// Session parameters PgBouncer's console answers with fixed values for drivers that ask (its `fake_param_list`):
    /// `SHOW name` returns the value, `SET name = …` a NOTICE `SET ignored`.
    public static let fakeParameters: [(name: String, value: String)] = [
        ("client_encoding", "UTF-8"), ("default_transaction_isolation", "read committed"),
        ("standard_conforming_strings", "on"), ("datestyle", "ISO"), ("timezone", "GMT"),
    ]

    /// The view named `name` (upper case), or nil when there is none. Averages are over `window`.
    public static func render(
        _ name: String, _ s: ConsoleSnapshot, version: String, window: StatsWindow = .shared
    ) -> ConsoleResult? {
        switch name {
        case "HELP": return help()
        case "POOLS": return pools(s)
        case "STATS": return stats(s, window: window)
        case "STATS_TOTALS": return statsTotals(s)
        case "STATS_AVERAGES": return statsAverages(s, window: window)
        case "TOTALS": return totals(s, window: window)
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
        default:
            guard let p = fakeParameters.first(where: { $0.name.uppercased() == name }) else { return nil }
            return ConsoleResult(columns: [(p.name, .text)], rows: [[p.value]])
        }
    }

    /// PgBouncer's layout: NOTICE `Console usage` with the command list as its detail, then tag SHOW.
    static func help() -> ConsoleResult {
        var r = ConsoleResult(columns: [], rows: [])
        let commands = [
            "SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION", "SHOW LISTS|MEM|STATE|ROUTES",
            "SHOW DNS_HOSTS|DNS_ZONES", "SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS", "SET key = arg", "RELOAD",
            "PAUSE [<db>]", "RESUME [<db>]", "DISABLE <db>", "ENABLE <db>", "RECONNECT [<db>]", "KILL <db>",
            "KILL_CLIENT <id>", "SHUTDOWN", "SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS", "WAIT_CLOSE [<db>]",
        ]
        r.notices = [.init("Console usage", detail: commands.map { "\n\t\($0)" }.joined())]
        return r
    }

    static func pools(_ s: ConsoleSnapshot) -> ConsoleResult {
        ConsoleResult(
            columns: [
                ("database", .text), ("user", .text), ("cl_active", .int4), ("cl_waiting", .int4),
                ("cl_active_cancel_req", .int4), ("cl_waiting_cancel_req", .int4), ("sv_active", .int4),
                ("sv_active_cancel", .int4), ("sv_being_canceled", .int4), ("sv_idle", .int4), ("sv_used", .int4),
                ("sv_tested", .int4), ("sv_login", .int4), ("maxwait", .int4), ("maxwait_us", .int4),
                ("pool_mode", .text), ("load_balance_hosts", .text), ("route", .text), ("server_address", .text), ("nat64_prefix", .text),
            ],
            rows: s.stats.pools.map { p in
                [
                    p.database, p.user, "\(p.clActive + p.clIdle)", "\(p.clWaiting)", "0", "0", "\(p.svActive)", "0",
                    "0", "\(p.svIdle)", "\(p.svUsed)", "0", "\(p.svLogin)", "\(p.maxwaitUs / 1_000_000)",
                    "\(p.maxwaitUs % 1_000_000)", p.poolMode, nil, p.route, p.serverAddress,
                    p.route == "nat64" ? s.stats.resolver.nat64Prefix : nil,
                ]
            })
    }

    /// `2026-12-04 22:00:00 UTC`, as PgBouncer prints times. gmtime_r rather than a DateFormatter: SHOW CLIENTS
    /// formats two per row, and a formatter made per call cost more than the rest of the row.
    static func timestamp(_ epoch: Double) -> String {
        var t = time_t(epoch)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }

    /// SHOW CLIENTS and SHOW SERVERS share PgBouncer's columns; `ptr` and `link` are pool64's ids (no pointers).
    /// After 1.18's 18 columns: current PgBouncer's `prepared_statements`, `id` and `replication` (always `none`:
    /// pool64 does not pool replication connections).
    static func connections(_ s: ConsoleSnapshot, clients: Bool) -> ConsoleResult {
        var columns: [(String, T)] = [
            ("type", .text), ("user", .text), ("database", .text), ("state", .text), ("addr", .text), ("port", .int4),
            ("local_addr", .text), ("local_port", .int4), ("connect_time", .text), ("request_time", .text),
            ("wait", .int4), ("wait_us", .int4), ("close_needed", .int4), ("ptr", .text), ("link", .text),
            ("remote_pid", .int4), ("tls", .text), ("application_name", .text), ("prepared_statements", .int4),
            ("id", .int8), ("replication", .text),
        ]
        if clients {
            columns.append(("pinned", .int4))
            return ConsoleResult(
                columns: columns,
                rows: s.clients.map { c in
                    [
                        "C", c.user, c.database, c.state, c.address, "\(c.port)", c.localAddress, "\(c.localPort)",
                        timestamp(c.connectTime), timestamp(c.requestTime), "\(c.waitMicros / 1_000_000)",
                        "\(c.waitMicros % 1_000_000)", "0", "c\(c.id)", c.serverID.map { "s\($0)" }, "0", c.tls,
                        c.applicationName, "\(c.preparedStatements)", "\(c.id)", "none", c.pinned ? "1" : "0",
                    ]
                })
        }
        columns.append(("route", .text))
        return ConsoleResult(
            columns: columns,
            rows: s.servers.map { v in
                [
                    "S", v.user, v.database, v.state, v.address, "\(v.port)", v.localAddress, "\(v.localPort)",
                    timestamp(v.connectTime), timestamp(v.requestTime), "0", "0", v.closeNeeded ? "1" : "0", "s\(v.id)",
                    v.clientID.map { "c\($0)" }, "\(v.remotePID)", v.tls, v.applicationName,
                    "\(v.preparedStatements)", "\(v.id)", "none", v.route,
                ]
            })
    }

    /// After 1.18's columns, current PgBouncer's: `reserve_pool_size` (its new name for `reserve_pool`, which stays
    /// for 1.18 readers), `server_lifetime`, `load_balance_hosts`, `max_client_connections`,
    /// `current_client_connections`.
    static func databases(_ s: ConsoleSnapshot) -> ConsoleResult {
        var clients: [String: Int] = [:]
        for c in s.clients { clients[c.database, default: 0] += 1 }
        let lifetime = s.config.first { $0.key == "server-lifetime" || $0.key == "server_lifetime" }?.value
        return ConsoleResult(
            columns: [
                ("name", .text), ("host", .text), ("port", .int4), ("database", .text), ("force_user", .text),
                ("pool_size", .int4), ("min_pool_size", .int4), ("reserve_pool", .int4), ("pool_mode", .text),
                ("max_connections", .int4), ("current_connections", .int4), ("paused", .int4), ("disabled", .int4),
                ("reserve_pool_size", .int4), ("server_lifetime", .int4), ("load_balance_hosts", .text),
                ("max_client_connections", .int4), ("current_client_connections", .int4),
            ],
            rows: s.databases.map { d in
                [
                    d.name, d.host, "\(d.port)", d.serverDatabase, nil, "\(d.poolSize)", "\(d.minPoolSize)", "0",
                    d.poolMode, "0", "\(d.currentConnections)", d.paused ? "1" : "0", d.disabled ? "1" : "0", "0",
                    lifetime.flatMap { Double($0) }.map { "\(Int($0))" } ?? "0", nil, "0", "\(clients[d.name] ?? 0)",
                ]
            })
    }

    /// After 1.18's `name`, `pool_mode` (NULL: no per-user override), current PgBouncer's per-user columns: the
    /// overrides pool64 does not have are NULL, the limits 0 (unlimited), the counts real.
    static func users(_ s: ConsoleSnapshot) -> ConsoleResult {
        var servers: [String: Int] = [:]
        var clients: [String: Int] = [:]
        for v in s.servers { servers[v.user, default: 0] += 1 }
        for c in s.clients { clients[c.user, default: 0] += 1 }
        let names = Set(s.stats.pools.map(\.user)).union(clients.keys).sorted()
        return ConsoleResult(
            columns: [
                ("name", .text), ("pool_mode", .text), ("pool_size", .int4), ("reserve_pool_size", .int4),
                ("max_user_connections", .int4), ("current_connections", .int4),
                ("max_user_client_connections", .int4), ("current_client_connections", .int4),
            ],
            rows: names.map { [$0, nil, nil, nil, "0", "\(servers[$0] ?? 0)", "0", "\(clients[$0] ?? 0)"] })
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
        // PgBouncer 1.18's caches, in its order; iobuf_cache counts the connections that hold a buffer.
        let users = Set(s.stats.pools.map(\.user)).count
        let rows: [(String, Int, Int)] = [
            ("user_cache", 256, users), ("db_cache", 256, s.databases.count),
            ("pool_cache", 2048, s.stats.pools.count), ("server_cache", 4096, s.servers.count),
            ("client_cache", 900, s.clients.count), ("iobuf_cache", 0, 0),
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
