import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Pool64Admin
import Pool64Core

/// The `pool64` command line. Thin by design: gather settings, validate them, bootstrap logging and metrics, run
/// the services.
@main
struct Pool64Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool64",
        abstract: "PostgreSQL connection-pool proxy, IPv6-first.",
        discussion: "Every option can also be set as POOL64_<NAME> (e.g. POOL64_POOL_SIZE) or in --config FILE.",
        version: pool64Version)

    @Option(name: .customLong("listen"), help: Self.optionHelp("listen"))
    var listen: [String] = []
    @Option(name: .customLong("admin-listen"), help: Self.optionHelp("admin-listen"))
    var adminListen: [String] = []
    @Option(name: .customLong("config"), help: "key = value settings file")
    var configFile: String?
    @Option(name: .customLong("set"), help: "any setting as key=value (repeatable)")
    var set: [String] = []
    @Option(name: .customLong("database-url"), help: Self.optionHelp("database-url")) var databaseURL: String?
    @Option(name: .customLong("pool-mode"), help: Self.optionHelp("pool-mode")) var poolMode: String?
    @Option(name: .customLong("pool-size"), help: Self.optionHelp("pool-size")) var poolSize: String?
    @Option(name: .customLong("min-pool-size"), help: Self.optionHelp("min-pool-size")) var minPoolSize: String?
    @Option(name: .customLong("max-client-conn"), help: Self.optionHelp("max-client-conn")) var maxClientConn: String?
    @Option(name: .customLong("query-wait-timeout"), help: Self.optionHelp("query-wait-timeout")) var queryWaitTimeout: String?
    @Option(name: .customLong("server-lifetime"), help: Self.optionHelp("server-lifetime")) var serverLifetime: String?
    @Option(name: .customLong("server-idle-timeout"), help: Self.optionHelp("server-idle-timeout")) var serverIdleTimeout: String?
    @Option(name: .customLong("client-idle-timeout"), help: Self.optionHelp("client-idle-timeout")) var clientIdleTimeout: String?
    @Option(name: .customLong("client-login-timeout"), help: Self.optionHelp("client-login-timeout")) var clientLoginTimeout: String?
    @Option(name: .customLong("auth-type"), help: Self.optionHelp("auth-type")) var authType: String?
    @Option(name: .customLong("auth-file"), help: Self.optionHelp("auth-file")) var authFile: String?
    @Option(name: .customLong("tls-cert"), help: Self.optionHelp("tls-cert")) var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: Self.optionHelp("tls-key")) var tlsKey: String?
    @Option(name: .customLong("project"), help: Self.optionHelp("project")) var project: String?
    @Option(name: .customLong("log-level"), help: Self.optionHelp("log-level")) var logLevel: String?
    @Option(name: .customLong("log-format"), help: Self.optionHelp("log-format")) var logFormat: String?
    @Option(name: .customLong("ip-policy"), help: Self.optionHelp("ip-policy")) var ipPolicy: String?
    @Option(name: .customLong("nat64-prefix"), help: Self.optionHelp("nat64-prefix")) var nat64Prefix: String?
    @Option(name: .customLong("happy-eyeballs-delay"), help: Self.optionHelp("happy-eyeballs-delay")) var happyEyeballsDelay: String?
    @Option(name: .customLong("dns-ttl-cap"), help: Self.optionHelp("dns-ttl-cap")) var dnsTTLCap: String?
    @Option(name: .customLong("admin-token"), help: Self.optionHelp("admin-token")) var adminToken: String?
    @Option(name: .customLong("shutdown-timeout"), help: Self.optionHelp("shutdown-timeout")) var shutdownTimeout: String?
    @Option(name: .customLong("max-prepared-statements"), help: Self.optionHelp("max-prepared-statements")) var maxPreparedStatements: String?
    @Option(name: .customLong("max-message-size"), help: Self.optionHelp("max-message-size")) var maxMessageSize: String?
    // A probe mode for container health checks (docker/Dockerfile): no configuration, no services, one GET.
    @Option(
        name: .customLong("health-check"), parsing: .upToNextOption,
        help: "probe: GET each URL in turn (e.g. http://[::1]:9090/readyz); exit 0 when one answers 2xx, else 1")
    var healthCheck: [String] = []
    @Option(name: .customLong("handover-socket"), help: Self.optionHelp("handover-socket")) var handoverSocket: String?
    @Option(name: .customLong("handover-timeout"), help: Self.optionHelp("handover-timeout")) var handoverTimeout: String?
    @Option(name: .customLong("admin-users"), help: Self.optionHelp("admin-users")) var adminUsers: String?
    @Option(name: .customLong("stats-users"), help: Self.optionHelp("stats-users")) var statsUsers: String?

    /// A flag's help: the setting's description and default from `Configuration`, so `--help` and the loader agree.
    private static func optionHelp(_ key: String) -> ArgumentHelp { ArgumentHelp(Configuration.helpText(key)) }

    /// Flags given on the command line, as settings.
    func flagSettings() -> [String: String] {
        var s: [String: String] = [:]
        if !listen.isEmpty { s["listen"] = listen.joined(separator: ",") }
        if !adminListen.isEmpty { s["admin-listen"] = adminListen.joined(separator: ",") }
        let pairs: [(String, String?)] = [
            ("database-url", databaseURL), ("pool-mode", poolMode), ("pool-size", poolSize),
            ("min-pool-size", minPoolSize), ("max-client-conn", maxClientConn),
            ("query-wait-timeout", queryWaitTimeout), ("server-lifetime", serverLifetime),
            ("server-idle-timeout", serverIdleTimeout), ("client-idle-timeout", clientIdleTimeout),
            ("client-login-timeout", clientLoginTimeout), ("auth-type", authType), ("auth-file", authFile),
            ("tls-cert", tlsCert), ("tls-key", tlsKey), ("project", project), ("log-level", logLevel),
            ("log-format", logFormat), ("ip-policy", ipPolicy), ("nat64-prefix", nat64Prefix),
            ("happy-eyeballs-delay", happyEyeballsDelay), ("dns-ttl-cap", dnsTTLCap), ("admin-token", adminToken),
            ("shutdown-timeout", shutdownTimeout), ("max-prepared-statements", maxPreparedStatements),
            ("max-message-size", maxMessageSize), ("handover-socket", handoverSocket),
            ("handover-timeout", handoverTimeout), ("admin-users", adminUsers), ("stats-users", statsUsers),
        ]
        for (k, v) in pairs { if let v { s[k] = v } }
        for kv in set {
            if let eq = kv.firstIndex(of: "=") {
                s[ConfigurationLoader.normalize(String(kv[..<eq]))] = String(kv[kv.index(after: eq)...])
            }
        }
        return s
    }

    /// Reads the file (if any), environment and flags into a validated configuration, and names the `POOL64_*`
    /// variables that were ignored (logged once the logger exists).
    func loadConfiguration() throws -> (Configuration, ignored: [String]) {
        let env = ProcessInfo.processInfo.environment
        var file: [String: String] = [:]
        if let path = configFile ?? env["POOL64_CONFIG"] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("cannot read config file \(path)")
            }
            file = try ConfigurationLoader.parseFile(text)
        }
        let environment = ConfigurationLoader.fromEnvironment(env)
        let merged = ConfigurationLoader.merge(file: file, environment: environment.settings, flags: flagSettings())
        return (try Configuration(settings: merged), environment.ignored)
    }

    func run() async throws {
        if !healthCheck.isEmpty { throw ExitCode(HealthProbe.exitStatus(urls: healthCheck)) }
        let config: Configuration
        let ignored: [String]
        do {
            (config, ignored) = try loadConfiguration()
        } catch let e as ConfigurationError {
            FileHandle.standardError.write(Data("pool64: \(e)\n".utf8))
            throw ExitCode(2)
        }
        try await Runner(config: config, configFile: configFile, flags: flagSettings(), ignoredEnvironment: ignored).run()
    }
}
