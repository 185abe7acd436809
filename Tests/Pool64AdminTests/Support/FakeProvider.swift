import Foundation
import Pool64Admin
import Pool64Stats

/// A provider whose answers tests set directly; `hangLiveness` makes `isAlive()` never answer in time.
final class FakeProvider: AdminProvider, @unchecked Sendable {
    // @unchecked: all state is guarded by `lock`.
    private let lock = NSLock()
    private var _snapshot: StatsSnapshot
    private var _readiness = Readiness(ready: true)
    private var _alive = true
    private var _hangLiveness = false

    init(snapshot: StatsSnapshot = FakeProvider.sampleSnapshot()) {
        self._snapshot = snapshot
    }

    var snapshot: StatsSnapshot {
        get { self.lock.withLock { self._snapshot } }
        set { self.lock.withLock { self._snapshot = newValue } }
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
