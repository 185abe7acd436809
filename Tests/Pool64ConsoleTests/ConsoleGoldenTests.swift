import Foundation
import Logging
import NIOCore
import Pool64Stats
import Testing

@testable import Pool64Console

/// Every SHOW against the columns PgBouncer 1.18 sent (PgBouncer118Golden.swift), then the additions.
@Suite struct ConsoleGoldenTests {
    func render(_ view: String, _ snap: ConsoleSnapshot = FakeBackend().snap) -> ConsoleResult? {
        ConsoleViews.render(view, snap, version: "pool64 test", window: StatsWindow())
    }

    @Test(arguments: PgBouncer118.columns.keys.sorted())
    func startsWithPgBouncer118sColumns(_ view: String) throws {
        let r = try #require(render(view))
        let golden = PgBouncer118.columns[view]!
        let ours = r.columns.prefix(golden.count).map { ($0.name, $0.type.rawValue) }
        #expect(ours.map(\.0) == golden.map(\.0), "SHOW \(view) names")
        #expect(ours.map(\.1) == golden.map(\.1), "SHOW \(view) type OIDs")
        for row in r.rows { #expect(row.count == r.columns.count, "SHOW \(view) row width") }
        if let names = PgBouncer118.rowNames[view] {
            #expect(Array(r.rows.map { $0[0] }.prefix(names.count)) == names, "SHOW \(view) rows")
        }
    }

    /// Current PgBouncer's columns come after 1.18's, then pool64's own.
    @Test func appendsCurrentDocumentationColumnsThenPool64s() throws {
        func tail(_ view: String) throws -> [String] {
            let r = try #require(render(view))
            return Array(r.names.dropFirst(PgBouncer118.columns[view]!.count))
        }
        #expect(
            try tail("STATS") == [
                "total_server_assignment_count", "total_client_parse_count", "total_server_parse_count",
                "total_bind_count", "avg_server_assignment_count", "avg_client_parse_count", "avg_server_parse_count",
                "avg_bind_count", "total_requests",
            ])
        #expect(try tail("POOLS") == ["load_balance_hosts", "route", "server_address", "nat64_prefix"])
        #expect(try tail("CLIENTS") == ["prepared_statements", "id", "replication", "pinned"])
        #expect(try tail("SERVERS") == ["prepared_statements", "id", "replication", "route"])
        #expect(
            try tail("DATABASES") == [
                "reserve_pool_size", "server_lifetime", "load_balance_hosts", "max_client_connections",
                "current_client_connections",
            ])
        #expect(
            try tail("USERS") == [
                "pool_size", "reserve_pool_size", "max_user_connections", "current_connections",
                "max_user_client_connections", "current_client_connections",
            ])
        #expect(try tail("STATS_TOTALS") == ConsoleViews.addedCounters)
        #expect(render("STATE")?.rows.map { $0[0] } == ["active", "paused", "suspended", "draining"])
        #expect(
            render("ROUTES")?.names == [
                "name", "family", "address", "source", "ttl", "last_error", "route", "route_bytes",
            ])
    }

    /// What Debian's prometheus-pgbouncer-exporter 1.7 reads (collectors.py), by name, as numbers psycopg2 converts.
    @Test func exporterColumnsExistAndAreNumeric() throws {
        let reads: [String: [String]] = [
            "STATS": ["database", "total_requests", "total_received", "total_sent", "total_query_time"],
            "POOLS": ["database", "user", "cl_active", "cl_waiting"],
            "DATABASES": ["database", "pool_size", "reserve_pool"],
        ]
        for (view, columns) in reads {
            let r = try #require(render(view))
            for c in columns {
                let col = try #require(r.columns.first { $0.name == c }, "SHOW \(view) lacks \(c)")
                if !["database", "user"].contains(c) { #expect(col.type != .text, "SHOW \(view).\(c)") }
            }
        }
        let lists = try #require(render("LISTS"))
        for row in lists.rows { #expect(Int(row[1] ?? "") != nil, "LISTS \(row[0] ?? "")") }
    }

    @Test func statsValuesAndMaxwaitSplit() throws {
        let pools = try #require(render("POOLS"))
        let row = Dictionary(uniqueKeysWithValues: zip(pools.names, pools.rows[0]))
        #expect(row["maxwait"] == "1" && row["maxwait_us"] == "500000")
        let stats = try #require(render("STATS"))
        let s = Dictionary(uniqueKeysWithValues: zip(stats.names, stats.rows[0]))
        #expect(s["total_query_count"] == "20" && s["total_requests"] == "20" && s["total_sent"] == "200")
        // No earlier sample: averages over the 10 s of uptime; times per transaction / query.
        #expect(s["avg_xact_count"] == "1" && s["avg_sent"] == "20" && s["avg_xact_time"] == "100")
        #expect(s["avg_query_time"] == "45" && s["avg_wait_time"] == "0")
        let clients = try #require(render("CLIENTS"))
        let c = Dictionary(uniqueKeysWithValues: zip(clients.names, clients.rows[0]))
        #expect(c["wait"] == "2" && c["wait_us"] == "500000" && c["id"] == "7" && c["link"] == "s3")
        #expect(c["connect_time"] == "1970-01-01 00:16:40 UTC")
        let dbs = try #require(render("DATABASES"))
        let d = Dictionary(uniqueKeysWithValues: zip(dbs.names, dbs.rows[0]))
        #expect(d["server_lifetime"] == "3600" && d["current_client_connections"] == "1" && d["force_user"] == .some(nil))
        let totals = try #require(render("TOTALS"))
        #expect(totals.rows.first { $0[0] == "total_client_bytes" }?[1] == "100")
    }

    /// Averages come from the newest sample at least 15 s old, so a scraper sees its own interval's rate.
    @Test func averagesUseTheLastStatsPeriod() throws {
        let window = StatsWindow()
        var snap = FakeBackend().snap
        let start = snap.startedAt
        func at(_ seconds: Double, xacts: UInt64) -> [String: String?] {
            snap.takenAt = start + seconds
            snap.stats.pools[0].totalXactCount = xacts
            let r = ConsoleViews.render("STATS", snap, version: "v", window: window)!
            return Dictionary(uniqueKeysWithValues: zip(r.names, r.rows[0]))
        }
        #expect(at(100, xacts: 1_000)["avg_xact_count"] == "10")  // since start
        #expect(at(105, xacts: 2_000)["avg_xact_count"] == "19")  // the sample at 100 s is under 15 s old: since start
        #expect(at(116, xacts: 4_000)["avg_xact_count"] == "187")  // (4000 - 1000) / 16 s
        #expect(at(132, xacts: 4_000)["avg_xact_count"] == "0")  // against the sample at 116 s
    }

    @Test func helpIsPgBouncersNotice() async {
        var out = ByteBuffer()
        ConsoleViews.help().write(to: &out)
        let m = messages(out)
        #expect(m.map(\.0) == Array("NC".utf8))
        var body = m[0].1
        var fields: [UInt8: String] = [:]
        while let code = body.readInteger(as: UInt8.self), code != 0 { fields[code] = body.readNullTerminatedString() }
        #expect(fields[UInt8(ascii: "M")] == "Console usage")
        #expect(fields[UInt8(ascii: "D")]?.hasPrefix("\n\tSHOW HELP|CONFIG|DATABASES|POOLS") == true)
        #expect(fields[UInt8(ascii: "D")]?.contains("\n\tKILL_CLIENT <id>") == true)
    }

    @Test func fakeParametersAnswerLikePgBouncer() throws {
        let r = try #require(render("CLIENT_ENCODING"))
        #expect(r.names == ["client_encoding"] && r.rows == [["UTF-8"]])
    }

    /// The bytes of a small result, message by message (PostgreSQL "Message Formats").
    @Test func encodesByteExact() {
        var out = ByteBuffer()
        ConsoleResult(columns: [("v", .text), ("n", .numeric)], rows: [["a", nil]]).write(to: &out)
        let expected: [UInt8] =
            [UInt8(ascii: "T"), 0, 0, 0, 46, 0, 2]
            + [UInt8(ascii: "v"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]
            + [UInt8(ascii: "n"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0xA4, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]
            + [UInt8(ascii: "D"), 0, 0, 0, 15, 0, 2, 0, 0, 0, 1, UInt8(ascii: "a"), 0xFF, 0xFF, 0xFF, 0xFF]
            + [UInt8(ascii: "C"), 0, 0, 0, 9] + Array("SHOW".utf8) + [0]
        #expect(Array(out.readableBytesView) == expected)
    }

    @Test func errorsStopTheQueryWithPgBouncersWording() async {
        let engine = ConsoleEngine(
            backend: FakeBackend(), version: "v", logger: Logger(label: "t"), window: StatsWindow())
        let out = await engine.execute("SHOW VERSION; SHOW NOPE; SHOW LISTS", session: .init(
            user: "a", client: "c", isAdmin: true))
        let m = messages(out)
        #expect(m.map(\.0) == Array("TDCEZ".utf8))
        let fields = BackendFields(m[3].1)
        #expect(fields[UInt8(ascii: "C")] == "08P01")
        #expect(fields[UInt8(ascii: "M")] == "invalid command 'SHOW NOPE', use SHOW HELP;")
        let refused = messages(await engine.execute("PAUSE", session: .init(user: "s", client: "c", isAdmin: false)))
        #expect(BackendFields(refused[0].1)[UInt8(ascii: "M")] == "admin access needed")
        #expect(BackendFields(refused[0].1)[UInt8(ascii: "C")] == "08P01")
        let set = messages(await engine.execute("SET pool_mode = 'session'", session: .init(
            user: "a", client: "c", isAdmin: true)))
        var tag = set[0].1
        #expect(tag.readNullTerminatedString() == "SET pool_mode=session")
    }
}

/// The fields of an ErrorResponse / NoticeResponse body.
func BackendFields(_ body: ByteBuffer) -> [UInt8: String] {
    var body = body
    var out: [UInt8: String] = [:]
    while let code = body.readInteger(as: UInt8.self), code != 0 { out[code] = body.readNullTerminatedString() }
    return out
}
