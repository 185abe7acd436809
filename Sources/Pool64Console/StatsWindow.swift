import Foundation
import Pool64Stats

/// Per-database counters as SHOW STATS sums them over a database's pools.
struct DatabaseTotals: Equatable, Sendable {
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

    /// Whether every counter is at least the baseline's (a pool that went away lowers the sums).
    func covers(_ o: DatabaseTotals) -> Bool {
        xacts >= o.xacts && queries >= o.queries && received >= o.received && sent >= o.sent
            && xactTime >= o.xactTime && queryTime >= o.queryTime && waitTime >= o.waitTime
    }

    init(
        xacts: UInt64 = 0, queries: UInt64 = 0, received: UInt64 = 0, sent: UInt64 = 0, xactTime: UInt64 = 0,
        queryTime: UInt64 = 0, waitTime: UInt64 = 0
    ) {
        (self.xacts, self.queries, self.received, self.sent) = (xacts, queries, received, sent)
        (self.xactTime, self.queryTime, self.waitTime) = (xactTime, queryTime, waitTime)
    }

    init(_ p: PoolSnapshot) {
        self.init(
            xacts: p.totalXactCount, queries: p.totalQueryCount, received: p.totalReceived, sent: p.totalSent,
            xactTime: p.totalXactTimeUs, queryTime: p.totalQueryTimeUs, waitTime: p.totalWaitTimeUs)
    }
}

/// The sliding window SHOW STATS averages over. PgBouncer averages over its last `stats_period` (15 s) with a timer;
/// pool64 has no timer for it: each SHOW that renders averages records the totals it saw (at most one sample a
/// second), and averages against the newest recorded sample at least `period` old — so a scraper polling every
/// 15–60 s gets rates over its own last interval. With no such sample yet the baseline is the process start with
/// every counter at zero (rates over the uptime). At most about `period` samples are kept.
public final class StatsWindow: @unchecked Sendable {
    /// The one window of this process: averages agree across console sessions, as PgBouncer's do.
    public static let shared = StatsWindow()

    /// Seconds; PgBouncer's default `stats_period`.
    public let period: Double
    private let lock = NSLock()
    private var samples: [(at: Date, totals: [String: DatabaseTotals])] = []

    public init(period: Double = 15) {
        self.period = period
    }

    /// Records `current` (taken at `snapshot.takenAt`) and returns what to average it against.
    func baseline(for snapshot: ConsoleSnapshot, current: [String: DatabaseTotals]) -> (
        at: Date, totals: [String: DatabaseTotals]
    ) {
        let now = snapshot.takenAt
        lock.lock()
        defer { lock.unlock() }
        // A snapshot older than the samples (a clock step) makes them meaningless.
        if let last = samples.last, last.at > now { samples.removeAll() }
        var base: (at: Date, totals: [String: DatabaseTotals]) = (snapshot.startedAt, [:])
        if let i = samples.lastIndex(where: { now.timeIntervalSince($0.at) >= period }) {
            base = samples[i]
            samples.removeFirst(i)
        }
        if samples.last.map({ now.timeIntervalSince($0.at) >= 1 }) ?? true {
            samples.append((now, current))
        }
        return base
    }
}
