import Foundation
import Pool64Stats
import Prometheus

/// Maps a ``StatsSnapshot`` onto series in a `PrometheusCollectorRegistry` and renders the registry as Prometheus
/// text exposition (format 0.0.4).
///
/// Gauges are set to the snapshot's values. Counters come from the snapshot's running totals: the exporter keeps
/// the last exported value of every counter series and increments by the difference, so a counter never goes
/// down even if the core restarts a pool's totals (a smaller value is treated as a reset and added whole).
/// Series that disappear from the snapshot (a pool removed, a route changed) are unregistered so stale label
/// sets do not linger. Every series carries a `project` label.
///
/// The registry is shared with swift-metrics (`PrometheusMetricsFactory`), so whatever the core records there is
/// emitted alongside. Metric names used here are listed in ``PrometheusExporter/MetricName``; the core must not
/// register the same names through swift-metrics.
public final class PrometheusExporter: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `lock`; the registry is itself Sendable.
    private let registry: PrometheusCollectorRegistry
    private let lock = NSLock()
    private var gauges: [SeriesKey: Gauge] = [:]
    private var counters: [SeriesKey: Counter] = [:]
    private var lastCounterValues: [SeriesKey: Double] = [:]

    /// Creates an exporter writing into `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Updates every snapshot-derived series, then renders the whole registry (including metrics recorded by the
    /// core through swift-metrics) as Prometheus text.
    public func exposition(for snapshot: StatsSnapshot) -> [UInt8] {
        self.lock.withLock {
            self.updateLocked(from: snapshot)
            var buffer: [UInt8] = []
            buffer.reserveCapacity(16 * 1024)
            self.registry.emit(into: &buffer)
            Self.emitHistograms(snapshot, into: &buffer)
            return buffer
        }
    }

    /// `pool64_transaction_duration_seconds` and `pool64_client_wait_duration_seconds`, rendered from the pools'
    /// own histograms in the snapshot (cumulative counts at `LatencyPercentiles.bucketBoundsMicros`, sum, count):
    /// recording through a metrics backend on the relay cost a lock and a bucket search per transaction.
    static func emitHistograms(_ snapshot: StatsSnapshot, into buffer: inout [UInt8]) {
        let series: [(String, String, KeyPath<PoolSnapshot, LatencyPercentiles>)] = [
            (MetricName.transactionDuration, "Transaction duration: first client message to the ReadyForQuery that ends it.", \.xactLatency),
            (MetricName.clientWaitDuration, "Time clients waited for a server connection.", \.waitLatency),
        ]
        var text = ""
        for (name, help, path) in series {
            text += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
            for pool in snapshot.pools {
                let h = pool[keyPath: path]
                let labels = "project=\"\(escape(snapshot.process.project))\",database=\"\(escape(pool.database))\",user=\"\(escape(pool.user))\""
                let cumulative = h.cumulativeBuckets ?? []
                for (i, bound) in LatencyPercentiles.bucketBoundsMicros.enumerated() {
                    let v = i < cumulative.count ? min(cumulative[i], h.count) : h.count
                    text += "\(name)_bucket{\(labels),le=\"\(Double(bound) / 1e6)\"} \(v)\n"
                }
                text += "\(name)_bucket{\(labels),le=\"+Inf\"} \(h.count)\n"
                text += "\(name)_sum{\(labels)} \(Double(h.sumMicros ?? 0) / 1e6)\n"
                text += "\(name)_count{\(labels)} \(h.count)\n"
            }
        }
        buffer.append(contentsOf: Array(text.utf8))
    }

    /// Label value escaping of the text format: backslash, double quote and newline.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// Updates every snapshot-derived series in the registry without rendering it.
    public func update(from snapshot: StatsSnapshot) {
        self.lock.withLock { self.updateLocked(from: snapshot) }
    }

    private func updateLocked(from snapshot: StatsSnapshot) {
        var batch = Batch(project: snapshot.process.project)
        batch.collect(snapshot)
        for sample in batch.gauges {
            let gauge =
                self.gauges[sample.key]
                ?? self.registry.makeGauge(descriptor: sample.metric.descriptor, labels: sample.key.labels)
            self.gauges[sample.key] = gauge
            gauge.set(sample.value)
        }
        for sample in batch.counters {
            let counter =
                self.counters[sample.key]
                ?? self.registry.makeCounter(descriptor: sample.metric.descriptor, labels: sample.key.labels)
            self.counters[sample.key] = counter
            let last = self.lastCounterValues[sample.key] ?? 0
            // A smaller total means the source restarted counting: add the new total whole to stay monotonic.
            let delta = sample.value >= last ? sample.value - last : sample.value
            self.lastCounterValues[sample.key] = sample.value
            guard delta > 0 else { continue }
            if sample.metric.integral {
                counter.increment(by: Int64(delta.rounded()))
            } else {
                counter.increment(by: delta)
            }
        }
        let liveGauges = Set(batch.gauges.map(\.key))
        for (key, gauge) in self.gauges where !liveGauges.contains(key) {
            self.registry.unregisterGauge(gauge)
            self.gauges[key] = nil
        }
        let liveCounters = Set(batch.counters.map(\.key))
        for (key, counter) in self.counters where !liveCounters.contains(key) {
            self.registry.unregisterCounter(counter)
            self.counters[key] = nil
            self.lastCounterValues[key] = nil
        }
    }
}

/// One time series: a metric name and its label pairs in a fixed order.
struct SeriesKey: Hashable {
    var name: String
    var labelPairs: [LabelPair]

    var labels: [(String, String)] { self.labelPairs.map { ($0.name, $0.value) } }

    struct LabelPair: Hashable {
        var name: String
        var value: String
    }

    init(_ name: String, _ labels: [(String, String)]) {
        self.name = name
        self.labelPairs = labels.map { LabelPair(name: $0.0, value: $0.1) }
    }
}

/// A value to publish for one series.
struct Sample {
    var metric: PrometheusExporter.MetricName
    var key: SeriesKey
    var value: Double
}

/// The samples one snapshot yields, before they touch the registry: the pure half of the mapping.
struct Batch {
    typealias M = PrometheusExporter.MetricName

    let project: String
    private(set) var gauges: [Sample] = []
    private(set) var counters: [Sample] = []

    init(project: String) {
        self.project = project
    }

    mutating func collect(_ snapshot: StatsSnapshot) {
        let process = snapshot.process
        self.gauge(M.info, 1, ["version": process.version, "pool_mode": process.poolMode])
        self.gauge(M.uptimeSeconds, process.uptimeSeconds)
        self.gauge(M.draining, process.draining ? 1 : 0)
        for pool in snapshot.pools {
            self.collect(pool)
        }
        self.collect(snapshot.resolver)
        self.collect(snapshot.totals)
    }

    private mutating func collect(_ pool: PoolSnapshot) {
        let labels = [("database", pool.database), ("user", pool.user)]
        self.gauge(M.clActive, Double(pool.clActive), labels)
        self.gauge(M.clWaiting, Double(pool.clWaiting), labels)
        self.gauge(M.clIdle, Double(pool.clIdle), labels)
        self.gauge(M.svActive, Double(pool.svActive), labels)
        self.gauge(M.svIdle, Double(pool.svIdle), labels)
        self.gauge(M.svUsed, Double(pool.svUsed), labels)
        self.gauge(M.svLogin, Double(pool.svLogin), labels)
        self.gauge(M.maxwaitSeconds, Self.seconds(pool.maxwaitUs), labels)
        self.gauge(M.pinnedClients, Double(pool.pinnedClients), labels)
        self.gauge(M.poolSize, Double(pool.poolSize), labels)
        self.gauge(
            M.poolRoute, 1,
            labels + [("pool_mode", pool.poolMode), ("route", pool.route), ("server_address", pool.serverAddress)]
        )
        for (quantile, value) in Self.quantiles(pool.xactLatency) {
            self.gauge(M.xactLatencySeconds, value, labels + [("quantile", quantile)])
        }
        for (quantile, value) in Self.quantiles(pool.waitLatency) {
            self.gauge(M.waitLatencySeconds, value, labels + [("quantile", quantile)])
        }
        self.counter(M.xactsTotal, Double(pool.totalXactCount), labels)
        self.counter(M.queriesTotal, Double(pool.totalQueryCount), labels)
        self.counter(M.receivedBytesTotal, Double(pool.totalReceived), labels)
        self.counter(M.sentBytesTotal, Double(pool.totalSent), labels)
        self.counter(M.xactTimeSecondsTotal, Self.seconds(pool.totalXactTimeUs), labels)
        self.counter(M.queryTimeSecondsTotal, Self.seconds(pool.totalQueryTimeUs), labels)
        self.counter(M.waitTimeSecondsTotal, Self.seconds(pool.totalWaitTimeUs), labels)
        self.counter(M.serverConnectionsTotal, Double(pool.totalServerConnections), labels)
        self.counter(M.serverConnectFailuresTotal, Double(pool.serverConnectFailures), labels)
        for (sqlstateClass, count) in pool.errorsBySqlstateClass.sorted(by: { $0.key < $1.key }) {
            self.counter(M.errorsTotal, Double(count), labels + [("sqlstate_class", sqlstateClass)])
        }
    }

    private mutating func collect(_ resolver: ResolverSnapshot) {
        self.gauge(M.resolverCacheEntries, Double(resolver.cache.count))
        self.gauge(
            M.resolverInfo, 1,
            [
                ("policy", resolver.policy), ("nat64_prefix", resolver.nat64Prefix),
                ("nat64_source", resolver.nat64Source),
            ]
        )
        for (family, count) in resolver.attemptsByFamily.sorted(by: { $0.key < $1.key }) {
            self.counter(M.resolverAttemptsTotal, Double(count), [("family", family)])
        }
        for (family, count) in resolver.failuresByFamily.sorted(by: { $0.key < $1.key }) {
            self.counter(M.resolverFailuresTotal, Double(count), [("family", family)])
        }
    }

    private mutating func collect(_ totals: GlobalCounters) {
        self.gauge(M.clientsCurrent, Double(totals.clientsCurrent))
        self.counter(M.clientsAcceptedTotal, Double(totals.clientsAccepted))
        self.counter(M.clientsRejectedTotal, Double(totals.clientsRejected))
        self.counter(M.protocolErrorsTotal, Double(totals.protocolErrors))
        self.counter(M.authFailuresTotal, Double(totals.authFailures))
        self.counter(M.cancelsForwardedTotal, Double(totals.cancelsForwarded))
        for (reason, count) in totals.closeReasons.sorted(by: { $0.key < $1.key }) {
            self.counter(M.clientClosesTotal, Double(count), [("reason", reason)])
        }
    }

    private mutating func gauge(_ metric: M, _ value: Double, _ labels: [(String, String)] = []) {
        self.gauges.append(Sample(metric: metric, key: self.key(metric, labels), value: value))
    }

    private mutating func gauge(_ metric: M, _ value: Double, _ labels: KeyValuePairs<String, String>) {
        self.gauge(metric, value, labels.map { ($0.key, $0.value) })
    }

    private mutating func counter(_ metric: M, _ value: Double, _ labels: [(String, String)] = []) {
        self.counters.append(Sample(metric: metric, key: self.key(metric, labels), value: value))
    }

    private func key(_ metric: M, _ labels: [(String, String)]) -> SeriesKey {
        SeriesKey(metric.name, [("project", self.project)] + labels)
    }

    private static func seconds(_ microseconds: UInt64) -> Double {
        Double(microseconds) / 1_000_000
    }

    private static func quantiles(_ latency: LatencyPercentiles) -> [(String, Double)] {
        [("0.5", latency.p50 / 1_000_000), ("0.95", latency.p95 / 1_000_000), ("0.99", latency.p99 / 1_000_000)]
    }
}
