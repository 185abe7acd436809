import Foundation
import Pool64Stats

/// Answers admin requests: `/healthz`, `/readyz`, `/stats`, `/metrics`. Knows nothing about sockets, so every route
/// is testable by calling ``respond(method:target:authorization:)`` directly.
struct AdminRouter: Sendable {
    /// How long each provider call may take before the route answers 503.
    struct Deadlines: Sendable {
        var liveness: Duration = .seconds(2)
        var readiness: Duration = .seconds(5)
        var stats: Duration = .seconds(5)
    }

    let provider: any AdminProvider
    let exporter: PrometheusExporter
    let token: BearerToken?
    let deadlines: Deadlines

    /// The response to a request whose head has been read. `target` is the request-target (path and query).
    func respond(method: String, target: String, authorization: String?) async -> AdminResponse {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let route = Route(rawValue: String(path))
        guard let route else { return .notFound }
        guard method == "GET" else { return .methodNotAllowed }
        if route.needsToken, let token, !token.accepts(authorization: authorization) {
            return .unauthorized
        }
        switch route {
        case .healthz: return await self.healthz()
        case .readyz: return await self.readyz()
        case .stats: return await self.stats()
        case .metrics: return await self.metrics()
        }
    }

    /// The admin endpoints.
    enum Route: String, CaseIterable {
        case healthz = "/healthz"
        case readyz = "/readyz"
        case stats = "/stats"
        case metrics = "/metrics"

        /// Probes stay open so orchestrators need no secret; the numbers are what the token protects.
        var needsToken: Bool {
            switch self {
            case .healthz, .readyz: false
            case .stats, .metrics: true
            }
        }
    }

    private func healthz() async -> AdminResponse {
        let provider = self.provider
        let alive = await withDeadline(self.deadlines.liveness) { await provider.isAlive() }
        if alive == true { return .json(200, #"{"status":"ok"}"#) }
        return .json(503, alive == nil ? #"{"status":"unresponsive"}"# : #"{"status":"unhealthy"}"#)
    }

    private func readyz() async -> AdminResponse {
        let provider = self.provider
        let readiness =
            await withDeadline(self.deadlines.readiness) { await provider.readiness() }
            ?? Readiness(ready: false, reason: "readiness check timed out")
        return .json(readiness.ready ? 200 : 503, Self.encode(readiness) ?? #"{"ready":false}"#)
    }

    private func stats() async -> AdminResponse {
        let provider = self.provider
        guard let snapshot = await withDeadline(self.deadlines.stats, { await provider.stats() }),
            let json = Self.encode(snapshot)
        else { return .json(503, #"{"error":"stats unavailable"}"#) }
        return .json(200, json)
    }

    private func metrics() async -> AdminResponse {
        let provider = self.provider
        guard let snapshot = await withDeadline(self.deadlines.stats, { await provider.stats() }) else {
            return .json(503, #"{"error":"stats unavailable"}"#)
        }
        let text = self.exporter.exposition(for: snapshot)
        return AdminResponse(status: 200, contentType: AdminResponse.prometheusType, body: text)
    }

    private static func encode(_ value: some Encodable) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
