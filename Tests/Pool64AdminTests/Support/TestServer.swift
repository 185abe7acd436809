import Logging
import NIOCore
import NIOPosix
import Pool64Admin
import Prometheus

/// Runs a real ``AdminServer`` for the duration of `body`, then cancels it and waits for it to stop.
func withAdminServer<Result: Sendable>(
    _ configuration: AdminServer.Configuration,
    provider: FakeProvider = FakeProvider(),
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    _ body: (AdminServer, [SocketAddress]) async throws -> Result
) async throws -> Result {
    var logger = Logger(label: "pool64.admin.tests")
    logger.logLevel = .critical
    let server = AdminServer(
        configuration: configuration, provider: provider, registry: registry,
        eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
    let addresses = try await server.bind()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            let result = try await body(server, addresses)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// The address a client uses to reach a bound listener: wildcards are reached through the loopback of their family.
func clientAddress(_ bound: SocketAddress, ipv4: Bool = false) throws -> SocketAddress {
    let port = bound.port ?? 0
    switch bound.ipAddress {
    case "::": return try SocketAddress(ipAddress: ipv4 ? "127.0.0.1" : "::1", port: port)
    case "0.0.0.0": return try SocketAddress(ipAddress: "127.0.0.1", port: port)
    default: return bound
    }
}
