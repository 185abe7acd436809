import Foundation
import Logging
import NIOCore
import NIOPosix
import Metrics
import Pool64Admin
import Pool64Core
import Prometheus
import ServiceLifecycle

/// Wires the services together and runs them until SIGTERM/SIGINT.
struct Runner {
    let config: Configuration
    let configFile: String?
    let flags: [String: String]

    func run() async throws {
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        let project = config.project
        let json = config.logFormat == .json
        LoggingSystem.bootstrap { label in
            var h: LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            h.logLevel = level
            h[metadataKey: "project"] = .string(project)
            return h
        }
        let logger = Logger(label: "pool64")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // One event loop runs every client and server channel: no locks or hops on the relay (DESIGN "Facts").
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let planner = try ResolverDialPlanner(
            policy: config.ipPolicy, nat64: config.nat64Prefix, attemptDelay: config.happyEyeballsDelay,
            ttlCap: config.dnsTTLCap, logger: logger)
        let proxy = try ProxyCore(config: config, loop: proxyGroup.next(), logger: logger, planner: planner)
        let admin = AdminServer(
            configuration: .init(listen: config.adminListen, bearerToken: config.adminToken),
            provider: CoreAdminProvider(proxy: proxy, planner: planner), registry: registry,
            eventLoopGroup: adminGroup, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if !config.adminListen.isEmpty {
            try await admin.bind()
            // The admin server stops last, so /readyz answers 503 while the proxy drains.
            services.append(.init(service: admin))
        }
        services.append(.init(service: ProxyService(proxy: proxy, admin: admin.boundAddressDescriptions, logger: logger)))
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        try await proxyGroup.shutdownGracefully()
        try await adminGroup.shutdownGracefully()
    }
}

/// Listens, serves, and drains on graceful shutdown: stop accepting, let transactions finish up to
/// `shutdown-timeout`, then end every connection with 57P01.
struct ProxyService: Service {
    let proxy: ProxyCore
    let admin: [String]
    let logger: Logger

    func run() async throws {
        let addresses = try proxy.config.listen.map { try Pool64Core.ListenAddress(parsing: $0) }
        let channels = try await Listener.bind(addresses, group: proxy.loop, logger: logger) { ch in
            proxy.acceptClient(ch)
        }
        let bound = channels.compactMap { $0.localAddress.map { Pool64Core.ListenAddress.displayPeer(ip: $0.ipAddress, port: $0.port) } }
        proxy.setListeners(bound, admin: admin)
        proxy.loop.execute { proxy.start() }
        logger.info("pool64 listening", metadata: ["listen": "\(bound)", "pool_mode": "\(proxy.config.poolMode.rawValue)"])
        try? await gracefulShutdown()
        logger.info("draining")
        for c in channels { try? await c.close() }
        try await proxy.loop.submit { proxy.beginDrain() }.get()
        let deadline = Date().addingTimeInterval(proxy.config.shutdownTimeout)
        while Date() < deadline {
            let busy = try await proxy.loop.submit { proxy.busyServers }.get()
            if busy == 0 { break }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        try await proxy.loop.submit { proxy.terminateAll() }.get()
        try? await Task.sleep(nanoseconds: 100_000_000)
        logger.info("pool64 stopped")
    }
}
