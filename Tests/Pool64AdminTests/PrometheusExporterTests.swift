import Pool64Stats
import Prometheus
import Testing

@testable import Pool64Admin

@Suite("StatsSnapshot → Prometheus mapping")
struct PrometheusExporterTests {
    @Test("every pool gauge and counter carries project, database and user")
    func poolSeries() {
        let registry = PrometheusCollectorRegistry()
        let text = String(
            decoding: PrometheusExporter(registry: registry).exposition(for: FakeProvider.sampleSnapshot()),
            as: UTF8.self)
        let labels = #"{project="alpha",database="app",user="app_user"}"#
        let expected: [(String, Double)] = [
            ("pool64_cl_active", 3), ("pool64_cl_waiting", 2), ("pool64_cl_idle", 5), ("pool64_sv_active", 3),
            ("pool64_sv_idle", 1), ("pool64_sv_used", 1), ("pool64_sv_login", 0), ("pool64_maxwait_seconds", 1.5),
            ("pool64_pinned_clients", 1), ("pool64_pool_size", 20), ("pool64_xact_count_total", 10),
            ("pool64_query_count_total", 30), ("pool64_received_bytes_total", 4096),
            ("pool64_sent_bytes_total", 8192), ("pool64_xact_time_seconds_total", 2),
            ("pool64_query_time_seconds_total", 1), ("pool64_wait_time_seconds_total", 0.5),
            ("pool64_server_connections_total", 4), ("pool64_server_connect_failures_total", 1),
        ]
        let metrics = MetricsText(text)
        for (name, value) in expected {
            #expect(metrics.value(name + labels) == value, "\(name)")
        }
        #expect(metrics.value(#"pool64_uptime_seconds{project="alpha"}"#) == 42.5)
        #expect(metrics.value(#"pool64_draining{project="alpha"}"#) == 0)
        #expect(metrics.value(#"pool64_resolver_cache_entries{project="alpha"}"#) == 1)
        #expect(metrics.value(#"pool64_clients_accepted_total{project="alpha"}"#) == 100)
        #expect(metrics.value(#"pool64_client_closes_total{project="alpha",reason="client_terminate"}"#) == 90)
        #expect(
            metrics.value(#"pool64_errors_total{project="alpha",database="app",user="app_user",sqlstate_class="23"}"#)
                == 2)
        #expect(
            metrics.value(
                #"pool64_xact_latency_seconds{project="alpha",database="app",user="app_user",quantile="0.99"}"#)
                == 0.009)
        #expect(text.contains("# TYPE pool64_xact_count_total counter"))
        #expect(text.contains("# TYPE pool64_cl_active gauge"))
        #expect(text.contains(#"route="nat64""#))
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.hasPrefix("pool64_"), "\(line)")
            #expect(line.contains(#"project="alpha""#), "\(line)")
        }
    }

    @Test("duration histograms come from the snapshot: cumulative buckets, +Inf = count, sum in seconds")
    func histograms() {
        var snapshot = FakeProvider.sampleSnapshot()
        let bounds = LatencyPercentiles.bucketBoundsMicros
        snapshot.pools[0].xactLatency = LatencyPercentiles(
            count: 10, p50: 300, p95: 900, p99: 900, sumMicros: 4_000,
            cumulativeBuckets: bounds.map { $0 < 250 ? 2 : $0 < 1_000 ? 9 : 10 })
        snapshot.pools[0].user = "we\"ird"
        let text = String(
            decoding: PrometheusExporter(registry: PrometheusCollectorRegistry()).exposition(for: snapshot),
            as: UTF8.self)
        let metrics = MetricsText(text)
        let labels = #"project="alpha",database="app",user="we\"ird""#
        #expect(text.contains("# TYPE pool64_transaction_duration_seconds histogram"))
        #expect(text.contains("# TYPE pool64_client_wait_duration_seconds histogram"))
        #expect(metrics.value("pool64_transaction_duration_seconds_bucket{\(labels),le=\"0.0001\"}") == 2)
        #expect(metrics.value("pool64_transaction_duration_seconds_bucket{\(labels),le=\"0.0005\"}") == 9)
        #expect(metrics.value("pool64_transaction_duration_seconds_bucket{\(labels),le=\"0.001\"}") == 10)
        #expect(metrics.value("pool64_transaction_duration_seconds_bucket{\(labels),le=\"+Inf\"}") == 10)
        #expect(metrics.value("pool64_transaction_duration_seconds_count{\(labels)}") == 10)
        #expect(metrics.value("pool64_transaction_duration_seconds_sum{\(labels)}") == 0.004)
    }

    @Test("counters add deltas, treat a smaller total as a reset, and never decrease")
    func counterDeltas() {
        let registry = PrometheusCollectorRegistry()
        let exporter = PrometheusExporter(registry: registry)
        let series = #"pool64_xact_count_total{project="alpha",database="app",user="app_user"}"#
        var values: [Double] = []
        for xacts: UInt64 in [10, 10, 25, 4, 6] {
            let text = String(
                decoding: exporter.exposition(for: FakeProvider.sampleSnapshot(xacts: xacts)), as: UTF8.self)
            values.append(MetricsText(text).value(series) ?? -1)
        }
        #expect(values == [10, 10, 25, 29, 31])
    }

    @Test("draining and vanished pools update the series")
    func drainingAndVanishedPools() {
        let registry = PrometheusCollectorRegistry()
        let exporter = PrometheusExporter(registry: registry)
        var snapshot = FakeProvider.sampleSnapshot()
        _ = exporter.exposition(for: snapshot)
        snapshot.process.draining = true
        snapshot.pools[0].route = "ipv6"
        var text = String(decoding: exporter.exposition(for: snapshot), as: UTF8.self)
        #expect(MetricsText(text).value(#"pool64_draining{project="alpha"}"#) == 1)
        #expect(text.contains(#"route="ipv6""#))
        #expect(!text.contains(#"route="nat64""#))
        snapshot.pools = []
        text = String(decoding: exporter.exposition(for: snapshot), as: UTF8.self)
        #expect(!text.contains("pool64_cl_active{"))
    }

    @Test("metrics recorded by the core in the same registry are emitted too")
    func sharedRegistry() {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: "pool64_core_events_total", unitName: "", helpText: ""),
            labels: [("project", "alpha")]
        ).increment()
        let text = String(
            decoding: PrometheusExporter(registry: registry).exposition(for: FakeProvider.sampleSnapshot()),
            as: UTF8.self)
        #expect(text.contains(#"pool64_core_events_total{project="alpha"} 1"#))
    }
}
