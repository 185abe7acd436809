import Foundation
import Pool64Stats

/// SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS: PgBouncer 1.18's columns, all numeric (OID 1700) as it
/// sends them, then the counters its current documentation adds (server assignments, prepared-statement parses and
/// binds: pool64 counts none of them, so they are 0).
extension ConsoleViews {
    /// The counters current PgBouncer adds after 1.18's, without their `total_`/`avg_` prefix.
    static let addedCounters = ["server_assignment_count", "client_parse_count", "server_parse_count", "bind_count"]

    static func byDatabase(_ s: ConsoleSnapshot) -> [(String, DatabaseTotals)] {
        var out: [String: DatabaseTotals] = [:]
        for p in s.stats.pools { out[p.database, default: DatabaseTotals()].add(DatabaseTotals(p)) }
        return out.sorted { $0.key < $1.key }
    }

    static func totalsRow(_ t: DatabaseTotals) -> [String] {
        ["\(t.xacts)", "\(t.queries)", "\(t.received)", "\(t.sent)", "\(t.xactTime)", "\(t.queryTime)", "\(t.waitTime)"]
    }

    /// PgBouncer's averages of `t` against `base`, `seconds` apart: transactions, queries and bytes per second,
    /// transaction and query time per transaction / query, wait time per second (PgBouncer 1.18's definition).
    static func averagesRow(_ t: DatabaseTotals, since base: (DatabaseTotals, Double)) -> [String] {
        let (d, seconds) = base
        let secs = max(seconds, 1)
        func rate(_ v: UInt64, _ b: UInt64) -> String { "\(UInt64(Double(v - b) / secs))" }
        func per(_ v: UInt64, _ b: UInt64, _ n: UInt64, _ nb: UInt64) -> String {
            n == nb ? "0" : "\((v - b) / (n - nb))"
        }
        return [
            rate(t.xacts, d.xacts), rate(t.queries, d.queries), rate(t.received, d.received), rate(t.sent, d.sent),
            per(t.xactTime, d.xactTime, t.xacts, d.xacts), per(t.queryTime, d.queryTime, t.queries, d.queries),
            rate(t.waitTime, d.waitTime),
        ]
    }

    /// Each database's totals and averages, the averages over `window` (StatsWindow explains the period). A
    /// database the baseline does not know, or whose counters went down (a pool closed), averages since start.
    static func statistics(_ s: ConsoleSnapshot, window: StatsWindow) -> [(String, totals: [String], avgs: [String])] {
        let current = byDatabase(s)
        let base = window.baseline(for: s, current: Dictionary(uniqueKeysWithValues: current))
        return current.map { db, t in
            (db, totalsRow(t), averagesRow(t, since: since(t, base.totals[db], base.at, s)))
        }
    }

    /// The baseline to average `t` against and the seconds since it.
    static func since(_ t: DatabaseTotals, _ b: DatabaseTotals?, _ at: Date, _ s: ConsoleSnapshot) -> (
        DatabaseTotals, Double
    ) {
        if let b, t.covers(b) { return (b, s.takenAt.timeIntervalSince(at)) }
        return (DatabaseTotals(), s.takenAt.timeIntervalSince(s.startedAt))
    }

    static func stats(_ s: ConsoleSnapshot, window: StatsWindow) -> ConsoleResult {
        let names =
            [
                "total_xact_count", "total_query_count", "total_received", "total_sent", "total_xact_time",
                "total_query_time", "total_wait_time", "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
                "avg_xact_time", "avg_query_time", "avg_wait_time",
            ] + addedCounters.map { "total_\($0)" } + addedCounters.map { "avg_\($0)" }
        let zeros = [String](repeating: "0", count: 2 * addedCounters.count)
        // total_requests is PgBouncer's name for total_query_count before 1.8: Debian's prometheus-pgbouncer-exporter
        // 1.7 reads it (and fails on PgBouncer 1.18 without it).
        return ConsoleResult(
            columns: [("database", .text)] + names.map { ($0, .numeric) } + [("total_requests", .numeric)],
            rows: statistics(s, window: window).map { db, totals, avgs in [db] + totals + avgs + zeros + [totals[1]] })
    }

    static let totalsColumns = [
        "xact_count", "query_count", "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
    ]

    static func statsTotals(_ s: ConsoleSnapshot) -> ConsoleResult {
        let zeros = [String](repeating: "0", count: addedCounters.count)
        return ConsoleResult(
            columns: [("database", .text)] + (totalsColumns + addedCounters).map { ($0, .numeric) },
            rows: byDatabase(s).map { db, t in [db] + totalsRow(t) + zeros })
    }

    static func statsAverages(_ s: ConsoleSnapshot, window: StatsWindow) -> ConsoleResult {
        let zeros = [String](repeating: "0", count: addedCounters.count)
        return ConsoleResult(
            columns: [("database", .text)] + (totalsColumns + addedCounters).map { ($0, .numeric) },
            rows: statistics(s, window: window).map { db, _, avgs in [db] + avgs + zeros })
    }

    /// One row per counter, summed over databases; byte counters are `client_bytes` (received from clients) and
    /// `server_bytes` (sent to them), as PgBouncer 1.18 names them here.
    static func totals(_ s: ConsoleSnapshot, window: StatsWindow) -> ConsoleResult {
        let current = byDatabase(s)
        let base = window.baseline(for: s, current: Dictionary(uniqueKeysWithValues: current))
        var all = DatabaseTotals()
        var allBase: DatabaseTotals? = DatabaseTotals()
        for (db, t) in current {
            all.add(t)
            if let b = base.totals[db], t.covers(b) { allBase?.add(b) } else { allBase = nil }
        }
        let avgs = averagesRow(all, since: since(all, allBase, base.at, s))
        let kinds = ["xact_count", "query_count", "client_bytes", "server_bytes", "xact_time", "query_time", "wait_time"]
        let names =
            kinds.map { "total_\($0)" } + kinds.map { "avg_\($0)" } + addedCounters.map { "total_\($0)" }
            + addedCounters.map { "avg_\($0)" }
        let values = totalsRow(all) + avgs + [String](repeating: "0", count: 2 * addedCounters.count)
        return ConsoleResult(
            columns: [("name", .text), ("value", .numeric)], rows: zip(names, values).map { [$0, $1] })
    }
}
