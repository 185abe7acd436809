import Foundation
import Logging
import NIOCore
import Pool64Stats
import Synchronization
import Testing

@testable import Pool64Console

@Suite struct ConsoleParserTests {
    func commands(_ text: String) -> [ConsoleCommand?] {
        ConsoleParser.parse(text).map { try? $0.get() }
    }

    @Test func keywordsAreCaseInsensitiveAndSemicolonsSeparate() {
        #expect(commands("show pools; SHOW Stats ;;  pause ") == [.show("POOLS"), .show("STATS"), .control(.pause(database: nil))])
        #expect(commands("PAUSE appdb") == [.control(.pause(database: "appdb"))])
        #expect(commands("resume \"My;Db\"") == [.control(.resume(database: "My;Db"))])
        #expect(commands("KILL_CLIENT 42") == [.control(.killClient(id: 42))])
        #expect(commands("shutdown wait_for_clients") == [.control(.shutdown(.waitForClients))])
        #expect(commands("SHUTDOWN") == [.control(.shutdown(.immediate))])
        #expect(commands("SET pool_size = '7'") == [.control(.set(key: "pool_size", value: "7"))])
        #expect(commands("set log_level = 'it''s'") == [.control(.set(key: "log_level", value: "it's"))])
        #expect(commands("SET pool_mode TO session") == [.control(.set(key: "pool_mode", value: "session"))])
        #expect(commands("SHOW \"pools\"") == [.show("POOLS")])
        #expect(commands("show lists;") == [.show("LISTS")])
        #expect(commands("") == [])
        #expect(commands(" ; ;; ") == [])
    }

    @Test func badCommandsAreErrorsNamingThem() {
        let r = ConsoleParser.parse("SHOW POOLS;  FROBNICATE the pool ; SHOW LISTS")
        guard r.count == 3, case .failure(let e) = r[1] else {
            Issue.record("expected an error in the middle: \(r)")
            return
        }
        // PgBouncer 1.18's wording and SQLSTATE, quoting the statement.
        #expect(e == ConsoleError("08P01", "invalid command 'FROBNICATE the pool', use SHOW HELP;"))
        #expect(ConsoleParser.parse("KILL") == [.failure(ConsoleError("08P01", "a database is required"))])
        #expect(ConsoleParser.parse("KILL_CLIENT x") == [.failure(.invalidCommand("KILL_CLIENT x"))])
        #expect(commands("KILL_CLIENT x") == [nil])
        #expect(commands("KILL") == [nil])
        #expect(commands("SHOW") == [nil])
        #expect(commands("SET pool_size") == [nil])
        #expect(commands("resume 'appdb'") == [nil])
        #expect(ConsoleParser.parse(String(repeating: "x", count: 70_000)).count == 1)
        // Long input is linear: 60 KiB of statements parse quickly.
        #expect(ConsoleParser.parse(String(repeating: "show pools;", count: 5_000)).count == 5_000)
    }
}

/// Reads the messages of a console reply.
func messages(_ buffer: ByteBuffer) -> [(UInt8, ByteBuffer)] {
    var b = buffer
    var out: [(UInt8, ByteBuffer)] = []
    while let type = b.readInteger(as: UInt8.self), let len = b.readInteger(as: Int32.self),
        let body = b.readSlice(length: Int(len) - 4)
    {
        out.append((type, body))
    }
    return out
}

@Suite struct ConsoleResultTests {
    @Test func encodesRowDescriptionDataRowsAndTag() {
        var out = ByteBuffer()
        ConsoleResult(columns: [("a", .text), ("n", .int4)], rows: [["x", "1"], [nil, "2"]]).write(to: &out)
        let m = messages(out)
        #expect(m.map(\.0) == [UInt8(ascii: "T"), UInt8(ascii: "D"), UInt8(ascii: "D"), UInt8(ascii: "C")])
        var t = m[0].1
        #expect(t.readInteger(as: Int16.self) == 2)
        #expect(t.readNullTerminatedString() == "a")
        t.moveReaderIndex(forwardBy: 6)
        #expect(t.readInteger(as: UInt32.self) == 25)
        var d = m[2].1
        #expect(d.readInteger(as: Int16.self) == 2)
        #expect(d.readInteger(as: Int32.self) == -1)
        var c = m[3].1
        #expect(c.readNullTerminatedString() == "SHOW")
    }
}

extension ByteBuffer {
    mutating func readNullTerminatedString() -> String? {
        guard let end = readableBytesView.firstIndex(of: 0) else { return nil }
        let s = readString(length: end - readerIndex)
        moveReaderIndex(forwardBy: 1)
        return s
    }
}

final class FakeBackend: ConsoleBackend {
    let commands = Mutex<[ControlCommand]>([])
    let snap: ConsoleSnapshot

    init() {
        let pool = PoolSnapshot.sample
        snap = ConsoleSnapshot(
            stats: StatsSnapshot(
                process: .init(
                    version: "0", project: "p", uptimeSeconds: 10, listeners: [], adminListeners: [], draining: false,
                    poolMode: "transaction"),
                pools: [pool],
                resolver: .init(policy: "ipv6-first", nat64Prefix: "64:ff9b::/96", nat64Source: "configured", cache: [],
                                attemptsByFamily: [:], failuresByFamily: [:]),
                totals: .init()),
            clients: [
                ClientInfo(
                    id: 7, user: "app", database: "appdb", state: "active", address: "::1", port: 50000,
                    localAddress: "::1", localPort: 6432, connectTime: 1_000, requestTime: 1_005, waitMicros: 2_500_000,
                    serverID: 3, tls: "", applicationName: "psql", preparedStatements: 1, pinned: false)
            ],
            servers: [
                ServerInfo(
                    id: 3, user: "app", database: "appdb", state: "active", address: "::1", port: 5432,
                    localAddress: "::1", localPort: 40000, connectTime: 1_000, requestTime: 1_005, clientID: 7,
                    remotePID: 4242, tls: "", applicationName: "psql", preparedStatements: 1, closeNeeded: false,
                    route: "ipv6")
            ],
            databases: [
                DatabaseInfo(
                    name: "appdb", host: "db.example", port: 5432, serverDatabase: "appdb", poolSize: 20,
                    minPoolSize: 0, poolMode: "transaction", currentConnections: 1, paused: false, disabled: false)
            ],
            config: [ConfigEntry(key: "server-lifetime", value: "3600", defaultValue: "3600", changeable: true)],
            startedAt: Date(timeIntervalSince1970: 1_000),
            takenAt: Date(timeIntervalSince1970: 1_010))
    }

    func snapshot() async -> ConsoleSnapshot { snap }
    func control(_ command: ControlCommand, by session: ConsoleSessionInfo) async -> ControlOutcome {
        commands.withLock { $0.append(command) }
        if case .resume = command { return .failed(ConsoleError("08P01", "pooler is not paused/suspended")) }
        return .done
    }
}

@Suite struct ConsoleEngineTests {
    let admin = ConsoleSessionInfo(user: "a", client: "127.0.0.1:1", isAdmin: true)
    let stats = ConsoleSessionInfo(user: "s", client: "127.0.0.1:2", isAdmin: false)

    func run(_ q: String, _ s: ConsoleSessionInfo, _ backend: FakeBackend = FakeBackend()) async -> [UInt8] {
        let engine = ConsoleEngine(
            backend: backend, version: "pool64 test", logger: Logger(label: "t"), window: StatsWindow())
        return messages(await engine.execute(q, session: s)).map(\.0)
    }

    @Test func showPoolsHasPgBouncersLeadingColumns() async {
        let r = ConsoleViews.render("POOLS", FakeBackend().snap, version: "v")
        #expect(r?.names.prefix(4) == ["database", "user", "cl_active", "cl_waiting"])
        #expect(r?.names.contains("maxwait_us") == true)
        #expect(r?.rows.first?.first == "appdb")
        for name in ConsoleViews.names where name != "HELP" {
            #expect(ConsoleViews.render(name, FakeBackend().snap, version: "v") != nil, "SHOW \(name)")
        }
        #expect(ConsoleViews.render("NOPE", FakeBackend().snap, version: "v") == nil)
        // What the Debian prometheus-pgbouncer-exporter reads.
        let s = ConsoleViews.render("STATS", FakeBackend().snap, version: "v")!
        for c in ["database", "total_requests", "total_received", "total_sent", "total_query_time"] {
            #expect(s.names.contains(c))
        }
        let d = ConsoleViews.render("DATABASES", FakeBackend().snap, version: "v")!
        #expect(d.names.contains("pool_size") && d.names.contains("reserve_pool"))
        let l = ConsoleViews.render("LISTS", FakeBackend().snap, version: "v")!
        #expect(l.rows.map { $0[0] } .contains("dns_pending"))
    }

    @Test func statsUsersMayOnlyShow() async {
        let backend = FakeBackend()
        #expect(await run("SHOW POOLS", stats, backend) == Array("TDCZ".utf8))
        #expect(await run("PAUSE", stats, backend) == Array("EZ".utf8))
        #expect(await run("SHOW HELP; RELOAD", stats, backend) == Array("NCEZ".utf8))
        #expect(await run("SET client_encoding = 'UTF8'", stats, backend) == Array("NCZ".utf8))
        #expect(backend.commands.withLock { $0 }.isEmpty)
        #expect(await run("PAUSE", admin, backend) == Array("CZ".utf8))
        #expect(backend.commands.withLock { $0 } == [.pause(database: nil)])
    }

    @Test func theFirstErrorEndsTheQuery() async {
        let backend = FakeBackend()
        #expect(await run("SHOW VERSION; RESUME; PAUSE", admin, backend) == Array("TDCEZ".utf8))
        #expect(backend.commands.withLock { $0 } == [.resume(database: nil)])
        #expect(await run("SHOW NOTHING", admin) == Array("EZ".utf8))
        #expect(await run("", admin) == Array("IZ".utf8))
        #expect(await run("SHOW HELP", admin) == Array("NCZ".utf8))
    }
}

extension PoolSnapshot {
    static var sample: PoolSnapshot {
        let json = """
            {"database":"appdb","user":"app","pool_mode":"transaction","cl_active":1,"cl_waiting":0,"cl_idle":2,
             "sv_active":1,"sv_idle":1,"sv_used":0,"sv_login":0,"maxwait_us":1500000,"pool_size":20,
             "pinned_clients":0,"total_xact_count":10,"total_query_count":20,"total_received":100,"total_sent":200,
             "total_xact_time":1000,"total_query_time":900,"total_wait_time":5,
             "total_server_connections":2,"server_connect_failures":0,
             "xact_latency_us":{"count":0,"p50":0,"p95":0,"p99":0},"wait_latency_us":{"count":0,"p50":0,"p95":0,"p99":0},
             "route":"ipv6","server_address":"[::1]:5432","addresses_tried":[],"errors_by_sqlstate_class":{}}
            """
        return try! JSONDecoder().decode(PoolSnapshot.self, from: Data(json.utf8))
    }
}
