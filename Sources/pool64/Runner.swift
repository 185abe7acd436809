import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Metrics
import Pool64Admin
import Pool64Core
import Pool64Resolver
import Pool64Systemd
import Prometheus
import ServiceLifecycle
import UnixSignals

/// Wires the services together and runs them until SIGTERM/SIGINT.
struct Runner {
    let config: Configuration
    let configFile: String?
    let flags: [String: String]
    /// `POOL64_*` variables that name no setting, warned about once at startup (not again on reload).
    var ignoredEnvironment: [String] = []

    /// Re-reads the file and environment (flags stay as given at start).
    func reloadedConfiguration() throws -> Configuration {
        let env = ProcessInfo.processInfo.environment
        var file: [String: String] = [:]
        if let path = configFile ?? env["POOL64_CONFIG"] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError(key: "config", value: path, reason: "cannot read file")
            }
            file = try ConfigurationLoader.parseFile(text)
        }
        return try Configuration(
            settings: ConfigurationLoader.merge(
                file: file, environment: ConfigurationLoader.fromEnvironment(env).settings, flags: flags))
    }

    func run() async throws {
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        let project = config.project
        let json = config.logFormat == .json
        LogLevelBox.shared.level = level
        LoggingSystem.bootstrap { label in
            var h: LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            h.logLevel = .trace
            h[metadataKey: "project"] = .string(project)
            return ReloadableLogHandler(inner: h)
        }
        let logger = Logger(label: "pool64")
        // Sends nothing unless systemd (Type=notify) set NOTIFY_SOCKET.
        let notifier = ServiceNotifier.fromProcessEnvironment(logger: logger)
        if !ignoredEnvironment.isEmpty {
            logger.warning(
                "ignoring environment variables that name no pool64 setting",
                metadata: ["variables": "\(ignoredEnvironment.joined(separator: ","))"])
        }
        let wantedFiles = OpenFileLimit.wanted(
            maxClients: config.maxClientConnections, serverConnections: config.poolSize * 4)
        if let files = OpenFileLimit.raise(toward: wantedFiles), files.after < wantedFiles {
            logger.warning(
                "open file limit is below what max-client-conn needs; raise the hard limit (ulimit -Hn)",
                metadata: ["limit": "\(files.after)", "wanted": "\(wantedFiles)", "max_client_conn": "\(config.maxClientConnections)"])
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // One relay loop runs every client and server socket: no locks or hops on the relay (DESIGN "Facts").
        let relay = RelayLoop()
        let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let planner = try ResolverDialPlanner(
            policy: config.ipPolicy, nat64: config.nat64Prefix, attemptDelay: config.happyEyeballsDelay,
            ttlCap: config.dnsTTLCap, logger: logger)
        let proxy = try ProxyCore(config: config, loop: relay, logger: logger, planner: planner)
        var adminConfiguration = AdminServer.Configuration(listen: config.adminListen, bearerToken: config.adminToken)
        adminConfiguration.reusePort = config.handoverSocket != nil
        let admin = AdminServer(
            configuration: adminConfiguration,
            provider: CoreAdminProvider(proxy: proxy, planner: planner), registry: registry,
            eventLoopGroup: adminGroup, logger: logger)
        // Fired by SIGTERM, a successor taking the listeners, or the console's SHUTDOWN.
        let stop = StopSignal()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // First, so graceful shutdown reaches it last: watchdog pings go on while the proxy drains.
        if let heartbeat = Self.heartbeat(notifier: notifier, proxy: proxy, planner: planner, logger: logger) {
            services.append(.init(service: heartbeat))
        }
        if !config.adminListen.isEmpty {
            try await admin.bind()
            // The admin server stops last, so /readyz answers 503 while the proxy drains.
            services.append(.init(service: admin))
        }
        // When the proxy has drained, everything stops (the admin server only stops on cancellation).
        services.append(
            .init(
                service: ProxyService(
                    proxy: proxy, admin: admin.boundAddressDescriptions, notifier: notifier, stop: stop,
                    logger: logger),
                successTerminationBehavior: .cancelGroup))
        // SIGHUP is trapped before any service runs: once READY=1 is out, `systemctl reload` may come at once, and an
        // untrapped SIGHUP would end the process.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let reloader = ReloadService(
            runner: self, proxy: proxy, planner: planner, notifier: notifier, signals: hangups, logger: logger)
        services.append(.init(service: reloader))
        // The admin console (database pgbouncer) answers once the proxy starts accepting.
        let console = ConsoleBridge(proxy: proxy, planner: planner, reloader: reloader, stop: stop, logger: logger)
        try await proxy.loop.submit { proxy.console = console }.get()
        if config.handoverSocket != nil {
            // Trapped here for the same reason as SIGHUP: an untrapped SIGUSR2 ends the process.
            let upgrades = await UnixSignalsSequence(trapping: .sigusr2)
            services.append(.init(service: UpgradeService(signals: upgrades, logger: logger)))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm],
                cancellationSignals: [.sigint],
                logger: logger))
        try await group.run()
        try await relay.shutdownGracefully()
        try await adminGroup.shutdownGracefully()
    }
}

/// Listens (taking the listeners over from a running predecessor when `handover-socket` names one), serves, and
/// drains on graceful shutdown: stop accepting, let transactions finish up to `shutdown-timeout`, then end every
/// connection with 57P01. After handing its listeners to a successor it first serves the clients it has.
struct ProxyService: Service, CustomStringConvertible {
    // swift-service-lifecycle logs each service described: a name, not the fields (the configuration within).
    var description: String { "ProxyService" }
    let proxy: ProxyCore
    let admin: [String]
    let notifier: ServiceNotifier
    let stop: StopSignal
    let logger: Logger

    func run() async throws {
        let addresses = try proxy.config.listen.map { try ListenAddress(parsing: $0) }
        var handover = ListenerHandover(proxy: proxy, logger: logger)
        let listeners = try handover.openListeners(addresses, stop: stop)
        let bound = listeners.map(\.address)
        proxy.setListeners(bound, admin: admin)
        proxy.loop.execute { proxy.start() }
        logger.info("pool64 listening", metadata: ["listen": "\(bound)", "pool_mode": "\(proxy.config.poolMode.rawValue)"])
        // Both listeners and the admin server are bound (Runner binds the admin server before the group runs).
        notifier.ready(status: "listening on \(bound.joined(separator: ", "))")
        let reason = await withGracefulShutdownHandler {
            await stop.wait()
        } onGracefulShutdown: {
            stop.fire(.signal)
        }
        switch reason {
        case .handedOver:
            notifier.status("handed over; serving connected clients until they leave")
            await handover.serveRemainingClients(timeout: proxy.config.handoverTimeout)
        case .waitForClients:
            logger.notice("SHUTDOWN WAIT_FOR_CLIENTS: no longer accepting; waiting for every client to leave")
            notifier.stopping(status: "waiting for clients to leave")
            for l in listeners { l.close() }
            try await proxy.loop.submit { proxy.retire() }.get()
            await handover.serveRemainingClients(timeout: .infinity)
        case .signal, .immediate:
            break
        }
        handover.server?.stop()
        logger.info("draining")
        notifier.stopping(status: "draining")
        for l in listeners { l.close() }
        try await proxy.loop.submit { proxy.beginDrain() }.get()
        let wait: Double
        if case .immediate = reason { wait = 0 } else { wait = proxy.config.shutdownTimeout }
        let deadline = Date().addingTimeInterval(wait)
        // SIGINT cancels instead of asking nicely: drain without waiting for running transactions.
        while Date() < deadline, !Task.isCancelled {
            let busy = try await proxy.loop.submit { proxy.busyServers }.get()
            if busy == 0 { break }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        try await proxy.loop.submit { proxy.terminateAll() }.get()
        try? await Task.sleep(nanoseconds: 100_000_000)
        logger.info("pool64 stopped")
        // Every client and server connection is closed; the admin listener and signal watchers hold nothing worth
        // waiting for, so end the process here rather than depend on their cancellation.
        exit(0)
    }
}

/// SIGHUP reloads the config file, environment and flags; an invalid result is logged and nothing is applied.
struct ReloadService: Service, CustomStringConvertible {
    var description: String { "ReloadService" }
    let runner: Runner
    let proxy: ProxyCore
    let planner: ResolverDialPlanner
    let notifier: ServiceNotifier
    /// SIGHUP, trapped by the runner before the group starts.
    let signals: UnixSignalsSequence
    let logger: Logger

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            // systemd shows the unit "reloading" until READY=1, which comes whether or not the new file was accepted.
            notifier.reloading(status: "reloading configuration")
            let applied = reload()
            notifier.ready(status: applied ? "configuration reloaded" : "configuration reload rejected; see the log")
        }
    }

    /// Returns whether the new configuration was applied.
    @discardableResult
    func reload() -> Bool {
        do {
            try apply(try runner.reloadedConfiguration())
            return true
        } catch {
            logger.error("configuration reload rejected; nothing changed", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Applies a validated configuration: resolver policy, the proxy's reloadable settings, the log level. Shared by
    /// SIGHUP, the console's RELOAD and its SET.
    func apply(_ new: Configuration) throws {
        _ = try ResolverDialPlanner.checked(policy: new.ipPolicy, nat64: new.nat64Prefix)
        guard let level = Logger.Level(rawValue: new.logLevel) else {
            throw ConfigurationError(key: "log-level", value: new.logLevel, reason: "unknown level")
        }
        try planner.update(policy: new.ipPolicy, nat64: new.nat64Prefix, attemptDelay: new.happyEyeballsDelay)
        let restart = try proxy.loop.submit { try proxy.reload(new) }.wait()
        LogLevelBox.shared.level = level
        logger.notice(
            "configuration reloaded",
            metadata: ["pool_size": "\(new.poolSize)", "needs_restart": "\(restart)", "log_level": "\(level)"])
    }
}
