import Foundation
import Logging
import Pool64Stats

/// Answers admin requests: the probes, `/stats` (and its `/stats/clients`, `/stats/servers` pages), `/metrics`, and
/// the `POST /admin/…` maintenance commands. Knows nothing about sockets, so every route is testable by calling
/// ``respond(method:target:authorization:peer:)`` directly.
struct AdminRouter: Sendable {
    /// How long each provider call may take before the route answers 503 (504 for a command).
    struct Deadlines: Sendable {
        var liveness: Duration = .seconds(2)
        var readiness: Duration = .seconds(5)
        var stats: Duration = .seconds(5)
        var control: Duration = .seconds(60)
    }

    let provider: any AdminProvider
    let exporter: PrometheusExporter
    let token: BearerToken?
    let deadlines: Deadlines
    /// Where the maintenance commands are logged, with the peer that sent them.
    let logger: Logger

    /// The response to a request whose head has been read. `target` is the request-target (path and query); `peer`
    /// the remote address, for the log.
    func respond(method: String, target: String, authorization: String?, peer: String = "?") async -> AdminResponse {
        let target = AdminTarget(target)
        guard let route = Route(rawValue: target.path) else { return .notFound }
        guard method == route.method else { return .methodNotAllowed(allow: route.method) }
        if case .control(let action) = route.kind {
            return await self.control(action, target: target, authorization: authorization, peer: peer)
        }
        if route.needsToken, let token, !token.accepts(authorization: authorization) {
            return .unauthorized
        }
        switch route.kind {
        case .healthz: return await self.healthz()
        case .readyz: return await self.readyz()
        case .stats: return await self.stats(target)
        case .connections(let kind): return await self.connections(kind, target)
        case .metrics: return await self.metrics()
        case .control: preconditionFailure("answered above")
        }
    }

    /// The admin endpoints.
    enum Route: String, CaseIterable {
        case healthz = "/healthz"
        case readyz = "/readyz"
        case stats = "/stats"
        case statsClients = "/stats/clients"
        case statsServers = "/stats/servers"
        case metrics = "/metrics"
        case pause = "/admin/pause"
        case resume = "/admin/resume"
        case reconnect = "/admin/reconnect"

        /// What a route does, with its argument.
        enum Kind: Equatable {
            case healthz, readyz, stats, metrics
            case connections(ConnectionKind)
            case control(AdminControl)
        }

        var kind: Kind {
            switch self {
            case .healthz: .healthz
            case .readyz: .readyz
            case .stats: .stats
            case .statsClients: .connections(.clients)
            case .statsServers: .connections(.servers)
            case .metrics: .metrics
            case .pause: .control(.pause)
            case .resume: .control(.resume)
            case .reconnect: .control(.reconnect)
            }
        }

        /// Views are read with GET; commands change state, so they take POST (and a GET never runs one).
        var method: String {
            switch self {
            case .healthz, .readyz, .stats, .statsClients, .statsServers, .metrics: "GET"
            case .pause, .resume, .reconnect: "POST"
            }
        }

        /// Probes stay open so orchestrators need no secret; the numbers are what the token protects. Commands need
        /// a token even when none is configured (they are refused then), which ``AdminRouter`` checks itself.
        var needsToken: Bool {
            switch self {
            case .healthz, .readyz: false
            case .stats, .statsClients, .statsServers, .metrics, .pause, .resume, .reconnect: true
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

    private func metrics() async -> AdminResponse {
        let provider = self.provider
        guard let snapshot = await withDeadline(self.deadlines.stats, { await provider.stats() }) else {
            return .json(503, #"{"error":"stats unavailable"}"#)
        }
        let text = self.exporter.exposition(for: snapshot)
        return AdminResponse(status: 200, contentType: AdminResponse.prometheusType, body: text)
    }

    static func encode(_ value: some Encodable) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
