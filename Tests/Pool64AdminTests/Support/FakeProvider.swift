import Foundation
import Pool64Admin
import Pool64Stats

/// A provider whose answers tests set directly; `hangLiveness` makes `isAlive()` never answer in time.
///
/// Commands are recorded in `controlCalls`; `controlError` makes them fail, `controlGate` holds them until opened.
final class FakeProvider: AdminProvider, @unchecked Sendable {
    // @unchecked: all state is guarded by `lock`.
    private let lock = NSLock()
    private var _snapshot: StatsSnapshot
    private var _clients: [ClientInfo] = []
    private var _servers: [ServerInfo] = []
    private var _readiness = Readiness(ready: true)
    private var _alive = true
    private var _hangLiveness = false
    private var _controlCalls: [ControlCall] = []
    private var _controlError: (any Error)?
    private var _controlHeld = false

    /// One recorded command.
    struct ControlCall: Equatable {
        var action: AdminControl
        var database: String?
    }

    init(snapshot: StatsSnapshot = FakeProvider.sampleSnapshot()) {
        self._snapshot = snapshot
    }

    var snapshot: StatsSnapshot {
        get { self.lock.withLock { self._snapshot } }
        set { self.lock.withLock { self._snapshot = newValue } }
    }

    var clients: [ClientInfo] {
        get { self.lock.withLock { self._clients } }
        set { self.lock.withLock { self._clients = newValue } }
    }

    var servers: [ServerInfo] {
        get { self.lock.withLock { self._servers } }
        set { self.lock.withLock { self._servers = newValue } }
    }

    var controlCalls: [ControlCall] { self.lock.withLock { self._controlCalls } }

    var controlError: (any Error)? {
        get { self.lock.withLock { self._controlError } }
        set { self.lock.withLock { self._controlError = newValue } }
    }

    /// While true, commands do not return (like a pause waiting for transactions); they ignore cancellation.
    var controlHeld: Bool {
        get { self.lock.withLock { self._controlHeld } }
        set { self.lock.withLock { self._controlHeld = newValue } }
    }

    var readinessAnswer: Readiness {
        get { self.lock.withLock { self._readiness } }
        set { self.lock.withLock { self._readiness = newValue } }
    }

    var alive: Bool {
        get { self.lock.withLock { self._alive } }
        set { self.lock.withLock { self._alive = newValue } }
    }

    var hangLiveness: Bool {
        get { self.lock.withLock { self._hangLiveness } }
        set { self.lock.withLock { self._hangLiveness = newValue } }
    }

    func stats() async -> StatsSnapshot { self.snapshot }

    func consoleSnapshot() async -> ConsoleSnapshot {
        let now = Date()
        return ConsoleSnapshot(
            stats: self.snapshot, clients: self.clients, servers: self.servers, databases: [], config: [],
            startedAt: now, takenAt: now)
    }

    func control(_ action: AdminControl, database: String?) async throws {
        self.lock.withLock { self._controlCalls.append(ControlCall(action: action, database: database)) }
        let until = ContinuousClock.now + .seconds(30)
        while self.controlHeld && ContinuousClock.now < until {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if let error = self.controlError { throw error }
    }

    func readiness() async -> Readiness { self.readinessAnswer }

    func isAlive() async -> Bool {
        if self.hangLiveness {
            // Ignores cancellation on purpose: the server must not wait for it.
            let until = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < until && self.hangLiveness {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        return self.alive
    }

    /// `count` clients numbered from 1, alternating users, each with a distinct port.
    static func sampleClients(_ count: Int) -> [ClientInfo] {
        (0..<count).map { index in
            ClientInfo(
                id: index + 1, user: index % 2 == 0 ? "app_user" : "report", database: "app",
                state: index % 3 == 0 ? "waiting" : "active", address: "2001:db8::\(index + 1)", port: 40000 + index,
                localAddress: "::1", localPort: 6432, connectTime: 1_700_000_000, requestTime: 1_700_000_010,
                waitMicros: index % 3 == 0 ? 1500 : 0, serverID: index % 3 == 0 ? nil : 100 + index, tls: "",
                applicationName: "app-\(index + 1)", preparedStatements: index, pinned: false)
        }
    }

    /// `count` server connections numbered from 101.
    static func sampleServers(_ count: Int) -> [ServerInfo] {
        (0..<count).map { index in
            ServerInfo(
                id: 101 + index, user: "app_user", database: "app", state: index == 0 ? "idle" : "active",
                address: "64:ff9b::c000:221", port: 5432, localAddress: "2001:db8::64", localPort: 50000 + index,
                connectTime: 1_700_000_000, requestTime: 1_700_000_020, clientID: index == 0 ? nil : index + 1,
                remotePID: Int32(3000 + index), tls: "TLS", applicationName: "", preparedStatements: 2,
                closeNeeded: false, route: "nat64")
        }
    }

    static func sampleSnapshot(project: String = "alpha", xacts: UInt64 = 10) -> StatsSnapshot {
        var pool = PoolSnapshot(database: "app", user: "app_user", poolMode: "transaction")
        pool.clActive = 3
        pool.clWaiting = 2
        pool.clIdle = 5
        pool.svActive = 3
        pool.svIdle = 1
        pool.svUsed = 1
        pool.svLogin = 0
        pool.maxwaitUs = 1_500_000
        pool.poolSize = 20
        pool.pinnedClients = 1
        pool.totalXactCount = xacts
        pool.totalQueryCount = xacts * 3
        pool.totalReceived = 4096
        pool.totalSent = 8192
        pool.totalXactTimeUs = 2_000_000
        pool.totalQueryTimeUs = 1_000_000
        pool.totalWaitTimeUs = 500_000
        pool.totalServerConnections = 4
        pool.serverConnectFailures = 1
        pool.xactLatency = LatencyPercentiles(count: xacts, p50: 1000, p95: 5000, p99: 9000)
        pool.route = "nat64"
        pool.serverAddress = "[64:ff9b::c000:221]:5432"
        pool.addressesTried = ["[64:ff9b::c000:221]:5432"]
        pool.errorsBySqlstateClass = ["23": 2]
        let process = ProcessInfoSnapshot(
            version: "0.1.0", project: project, uptimeSeconds: 42.5, listeners: ["[::]:6432"],
            adminListeners: ["[::]:9090"], draining: false, poolMode: "transaction")
        let resolver = ResolverSnapshot(
            policy: "ipv6-first", nat64Prefix: "64:ff9b::/96", nat64Source: "configured",
            cache: [
                ResolverCacheEntry(
                    name: "db.example", addresses: ["192.0.2.33"], ttlRemainingSeconds: 30, negative: false)
            ],
            attemptsByFamily: ["ipv6": 4], failuresByFamily: ["ipv6": 1])
        let totals = GlobalCounters(
            clientsAccepted: 100, clientsRejected: 2, clientsCurrent: 10, protocolErrors: 1, authFailures: 3,
            closeReasons: ["client_terminate": 90])
        return StatsSnapshot(process: process, pools: [pool], resolver: resolver, totals: totals)
    }
}
