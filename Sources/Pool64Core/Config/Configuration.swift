import Pool64Resolver

/// Every setting pool64 runs with, validated. Built from one flat `[key: value]` map that merges, in rising
/// priority, the optional config file, `POOL64_*` environment variables and command-line flags
/// (see `ConfigurationLoader`). Keys are the flag names without dashes in front (`pool-size`).
public struct Configuration: Sendable, Equatable {
    /// How long a client keeps a server connection.
    public enum PoolMode: String, Sendable {
        /// Leased per transaction, returned at ReadyForQuery `I`.
        case transaction
        /// Leased for the client's lifetime, reset with `DISCARD ALL` afterwards.
        case session
    }

    /// How clients prove who they are.
    public enum AuthType: String, Sendable {
        case scramSHA256 = "scram-sha-256"
        case md5
        case trust
    }

    /// Log line format.
    public enum LogFormat: String, Sendable {
        case text, json
    }

    public var listen: [String] = ["[::]:6432"]
    public var adminListen: [String] = ["[::]:9090"]
    public var databaseURL: String = ""
    public var poolMode: PoolMode = .transaction
    public var poolSize = 20
    public var minPoolSize = 0
    public var maxClientConnections = 10_000
    /// Seconds a client may wait for a server connection.
    public var queryWaitTimeout: Double = 120
    public var serverLifetime: Double = 3600
    public var serverIdleTimeout: Double = 600
    /// 0 disables.
    public var clientIdleTimeout: Double = 0
    /// Seconds a client may take from connect to finished authentication.
    public var clientLoginTimeout: Double = 60
    public var authType: AuthType = .scramSHA256
    public var authFile: String? = nil
    public var tlsCertificate: String? = nil
    public var tlsKey: String? = nil
    public var project = "default"
    public var logLevel = "info"
    public var logFormat: LogFormat = .text
    public var ipPolicy = "ipv6-first"
    public var nat64Prefix = "64:ff9b::/96"
    /// RFC 8305 "Connection Attempt Delay", seconds.
    public var happyEyeballsDelay: Double = 0.25
    public var dnsTTLCap: Double = 300
    public var adminToken: String? = nil
    public var shutdownTimeout: Double = 30
    /// Per server connection, protocol-level prepared statements kept (LRU) in transaction mode.
    public var maxPreparedStatements = 1000
    /// Largest frontend message accepted, bytes.
    public var maxMessageSize = 256 * 1024 * 1024
    /// Unix socket through which a new pool64 takes this one's listeners (zero-downtime restart); nil disables.
    public var handoverSocket: String? = nil
    /// Seconds a process that handed its listeners over keeps serving its connected clients before draining.
    public var handoverTimeout: Double = 300
    /// Users who may run every admin console command (PgBouncer's `admin_users`).
    public var adminUsers: [String] = []
    /// Users who may run the console's SHOW commands (PgBouncer's `stats_users`).
    public var statsUsers: [String] = []

    public init() {}

    /// Every key the loader accepts, with a one-line description for `--help` and docs.
    public static let keys: [(key: String, help: String)] = [
        ("listen", "PostgreSQL listen addresses, comma separated or repeated"),
        ("admin-listen", "HTTP admin listen addresses, comma separated or repeated"),
        ("database-url", "libpq URL or key=value string of the database (or DATABASE_URL); required"),
        ("pool-mode", "transaction | session"),
        ("pool-size", "server connections per (database, user) pool"),
        ("min-pool-size", "server connections kept open even when idle"),
        ("max-client-conn", "client connections accepted at once; beyond it 53300"),
        ("query-wait-timeout", "seconds a client waits for a server connection"),
        ("server-lifetime", "seconds after which an idle server connection is replaced"),
        ("server-idle-timeout", "seconds an unused server connection stays open"),
        ("client-idle-timeout", "seconds an idle client stays connected (0 = forever)"),
        ("client-login-timeout", "seconds a client has to finish startup and authentication"),
        ("auth-type", "scram-sha-256 | md5 | trust"),
        ("auth-file", "PgBouncer-style userlist: \"user\" \"secret\" lines"),
        ("tls-cert", "PEM certificate for TLS to clients"),
        ("tls-key", "PEM private key for TLS to clients"),
        ("project", "project id labelling logs and metrics"),
        ("log-level", "trace | debug | info | notice | warning | error | critical"),
        ("log-format", "text | json"),
        ("ip-policy", "ipv6-first | ipv4 | ipv6-only"),
        ("nat64-prefix", "NAT64 /96 prefix, auto (RFC 7050 discovery) or off"),
        ("happy-eyeballs-delay", "seconds between connection attempts (RFC 8305)"),
        ("dns-ttl-cap", "longest seconds a DNS answer is cached"),
        ("admin-token", "bearer token required by /stats and /metrics"),
        ("shutdown-timeout", "seconds SIGTERM waits for running transactions"),
        ("max-prepared-statements", "prepared statements cached per server connection"),
        ("max-message-size", "largest client message accepted, bytes"),
        ("handover-socket", "Unix socket path: a new pool64 started with the same path takes over the listeners"),
        ("handover-timeout", "seconds a replaced pool64 serves its connected clients before draining"),
        ("admin-users", "users allowed every admin console command (database pgbouncer), comma separated"),
        ("stats-users", "users allowed the admin console's SHOW commands, comma separated"),
    ]

    /// Keys SIGHUP, RELOAD and the console's SET apply without a restart.
    public static let reloadableKeys: Set<String> = Set(keys.map(\.key)).subtracting([
        "listen", "admin-listen", "pool-mode", "project", "tls-cert", "tls-key", "log-format", "dns-ttl-cap",
        "admin-token", "handover-socket",
    ])

    /// The settings as the loader would read them back (`SHOW CONFIG`, the console's SET).
    public var settings: [String: String] {
        func secs(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(d) }
        var s: [String: String] = [
            "listen": listen.joined(separator: ","), "admin-listen": adminListen.joined(separator: ","),
            "database-url": databaseURL, "pool-mode": poolMode.rawValue, "pool-size": String(poolSize),
            "min-pool-size": String(minPoolSize), "max-client-conn": String(maxClientConnections),
            "query-wait-timeout": secs(queryWaitTimeout), "server-lifetime": secs(serverLifetime),
            "server-idle-timeout": secs(serverIdleTimeout), "client-idle-timeout": secs(clientIdleTimeout),
            "client-login-timeout": secs(clientLoginTimeout), "auth-type": authType.rawValue, "project": project,
            "log-level": logLevel, "log-format": logFormat.rawValue, "ip-policy": ipPolicy, "nat64-prefix": nat64Prefix,
            "happy-eyeballs-delay": secs(happyEyeballsDelay), "dns-ttl-cap": secs(dnsTTLCap),
            "shutdown-timeout": secs(shutdownTimeout), "max-prepared-statements": String(maxPreparedStatements),
            "max-message-size": String(maxMessageSize), "handover-timeout": secs(handoverTimeout),
            "admin-users": adminUsers.joined(separator: ","), "stats-users": statsUsers.joined(separator: ","),
        ]
        s["auth-file"] = authFile ?? ""
        s["tls-cert"] = tlsCertificate ?? ""
        s["tls-key"] = tlsKey ?? ""
        s["admin-token"] = adminToken ?? ""
        s["handover-socket"] = handoverSocket ?? ""
        return s
    }

    /// Each key's default as it would be written in a setting; keys without one (database-url, auth-file, TLS files,
    /// admin-token) are unset by default. A unit test checks that these parse back to `Configuration()`.
    public static let defaults: [String: String] = [
        "listen": "[::]:6432", "admin-listen": "[::]:9090", "pool-mode": "transaction", "pool-size": "20",
        "min-pool-size": "0", "max-client-conn": "10000", "query-wait-timeout": "120", "server-lifetime": "3600",
        "server-idle-timeout": "600", "client-idle-timeout": "0", "client-login-timeout": "60",
        "auth-type": "scram-sha-256", "project": "default", "log-level": "info", "log-format": "text",
        "ip-policy": "ipv6-first", "nat64-prefix": "64:ff9b::/96", "happy-eyeballs-delay": "0.25",
        "dns-ttl-cap": "300", "shutdown-timeout": "30", "max-prepared-statements": "1000",
        "max-message-size": "268435456", "handover-timeout": "300",
    ]

    /// `--help` text of `key`: its description and default.
    public static func helpText(_ key: String) -> String {
        let help = keys.first { $0.key == key }?.help ?? ""
        guard let d = defaults[key] else { return help }
        return "\(help) (default: \(d))"
    }

    /// Builds a configuration from merged settings; throws naming the first unknown or invalid key.
    public init(settings: [String: String]) throws(ConfigurationError) {
        let known = Set(Self.keys.map(\.key))
        for key in settings.keys.sorted() where !known.contains(key) {
            throw ConfigurationError(key: key, value: settings[key]!, reason: "unknown setting")
        }
        func list(_ v: String) -> [String] {
            v.split(separator: ",").map { $0.trimmingCharacters() }.filter { !$0.isEmpty }
        }
        // Checked here so a bad address fails at startup with the setting's name, before anything binds.
        func addresses(_ key: String, _ v: String) throws(ConfigurationError) -> [String] {
            let items = list(v)
            for item in items {
                do throws(ListenAddress.ParseError) {
                    _ = try ListenAddress(parsing: item)
                } catch {
                    throw ConfigurationError(key: key, value: item, reason: error.reason)
                }
            }
            return items
        }
        func int(_ key: String, _ v: String, min: Int) throws(ConfigurationError) -> Int {
            guard let n = Int(v.trimmingCharacters()), n >= min else {
                throw ConfigurationError(key: key, value: v, reason: "expected an integer ≥ \(min)")
            }
            return n
        }
        func seconds(_ key: String, _ v: String) throws(ConfigurationError) -> Double {
            var s = v.trimmingCharacters()
            var scale = 1.0
            if s.hasSuffix("ms") {
                scale = 0.001
                s.removeLast(2)
            } else if s.hasSuffix("s") {
                s.removeLast()
            }
            guard let n = Double(s), n >= 0, n.isFinite else {
                throw ConfigurationError(key: key, value: v, reason: "expected seconds (e.g. 30, 2.5, 250ms)")
            }
            return n * scale
        }
        for (key, value) in settings {
            switch key {
            case "listen":
                listen = try addresses(key, value)
                if listen.isEmpty { throw ConfigurationError(key: key, value: value, reason: "no address") }
            case "admin-listen": adminListen = try addresses(key, value)
            case "database-url": databaseURL = value
            case "pool-mode":
                guard let m = PoolMode(rawValue: value) else {
                    throw ConfigurationError(key: key, value: value, reason: "expected transaction or session")
                }
                poolMode = m
            case "pool-size": poolSize = try int(key, value, min: 1)
            case "min-pool-size": minPoolSize = try int(key, value, min: 0)
            case "max-client-conn": maxClientConnections = try int(key, value, min: 1)
            case "query-wait-timeout": queryWaitTimeout = try seconds(key, value)
            case "server-lifetime": serverLifetime = try seconds(key, value)
            case "server-idle-timeout": serverIdleTimeout = try seconds(key, value)
            case "client-idle-timeout": clientIdleTimeout = try seconds(key, value)
            case "client-login-timeout": clientLoginTimeout = try seconds(key, value)
            case "auth-type":
                guard let a = AuthType(rawValue: value.lowercased()) else {
                    throw ConfigurationError(key: key, value: value, reason: "expected scram-sha-256, md5 or trust")
                }
                authType = a
            case "auth-file": authFile = value.isEmpty ? nil : value
            case "tls-cert": tlsCertificate = value.isEmpty ? nil : value
            case "tls-key": tlsKey = value.isEmpty ? nil : value
            case "project":
                guard !value.isEmpty else { throw ConfigurationError(key: key, value: value, reason: "empty") }
                project = value
            case "log-level":
                let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
                guard levels.contains(value.lowercased()) else {
                    throw ConfigurationError(key: key, value: value, reason: "expected one of \(levels)")
                }
                logLevel = value.lowercased()
            case "log-format":
                guard let f = LogFormat(rawValue: value) else {
                    throw ConfigurationError(key: key, value: value, reason: "expected text or json")
                }
                logFormat = f
            case "ip-policy":
                guard ["ipv6-first", "ipv4", "ipv6-only"].contains(value) else {
                    throw ConfigurationError(key: key, value: value, reason: "expected ipv6-first, ipv4 or ipv6-only")
                }
                ipPolicy = value
            case "nat64-prefix": nat64Prefix = value
            case "happy-eyeballs-delay": happyEyeballsDelay = try seconds(key, value)
            case "dns-ttl-cap": dnsTTLCap = try seconds(key, value)
            case "admin-token": adminToken = value.isEmpty ? nil : value
            case "shutdown-timeout": shutdownTimeout = try seconds(key, value)
            case "max-prepared-statements": maxPreparedStatements = try int(key, value, min: 1)
            case "max-message-size": maxMessageSize = try int(key, value, min: 1024)
            case "handover-socket":
                // sun_path holds 107 bytes and a NUL.
                guard value.utf8.count < 108 else {
                    throw ConfigurationError(key: key, value: value, reason: "longer than a Unix socket path may be (107 bytes)")
                }
                handoverSocket = value.isEmpty ? nil : value
            case "handover-timeout": handoverTimeout = try seconds(key, value)
            case "admin-users": adminUsers = list(value)
            case "stats-users": statsUsers = list(value)
            default:
                throw ConfigurationError(key: key, value: value, reason: "unknown setting")
            }
        }
        if minPoolSize > poolSize {
            throw ConfigurationError(
                key: "min-pool-size", value: String(minPoolSize), reason: "larger than pool-size \(poolSize)")
        }
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw ConfigurationError(key: "tls-cert", value: tlsCertificate ?? "", reason: "tls-cert and tls-key go together")
        }
        if databaseURL.isEmpty {
            throw ConfigurationError(key: "database-url", value: "", reason: "required (or set DATABASE_URL)")
        }
        do {
            _ = try ConnectionString(parsing: databaseURL)
        } catch {
            throw ConfigurationError(key: "database-url", value: "(hidden)", reason: error.description)
        }
    }
}

/// A setting that is unknown or has an invalid value. Startup stops with this message.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var reason: String
    public init(key: String, value: String, reason: String) {
        self.key = key
        self.value = value
        self.reason = reason
    }
    public var description: String { "invalid setting \(key)=\(value): \(reason)" }
}

/// What the environment contributes: settings by key, and the names of `POOL64_*` variables that are not settings.
public struct EnvironmentSettings: Sendable, Equatable {
    /// Known settings, keyed like the config file (`pool-size`).
    public var settings: [String: String] = [:]
    /// `POOL64_*` variable names that name no setting, sorted; ignored, and worth one warning.
    public var ignored: [String] = []
    public init(settings: [String: String] = [:], ignored: [String] = []) {
        self.settings = settings
        self.ignored = ignored
    }
}

/// Merges the config file, the environment and flags into the flat settings map `Configuration` validates.
public enum ConfigurationLoader {
    /// Parses `key = value` lines (`#` comments, optional quotes, `_` or `-` in keys).
    public static func parseFile(_ text: String) throws(ConfigurationError) -> [String: String] {
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigurationError(key: "line \(n + 1)", value: String(line), reason: "expected key = value")
            }
            let key = normalize(String(line[..<eq]))
            var value = String(line[line.index(after: eq)...]).trimmingCharacters()
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            }
            out[key] = value
        }
        return out
    }

    /// Settings from `POOL64_*` variables (`POOL64_POOL_SIZE` → `pool-size`) and `DATABASE_URL`, plus the
    /// `POOL64_*` variables that name no setting.
    ///
    /// A variable the loader does not know is ignored (the caller logs the names once), never fatal: Kubernetes
    /// injects `<SERVICE>_PORT=tcp://…`, `<SERVICE>_SERVICE_HOST=…` and friends for every Service in the namespace,
    /// so a Service named `pool64-alpha` gives the pod `POOL64_ALPHA_PORT`, and failing on it crash-looped the pod.
    /// A bad value of a known setting still stops startup, since it is a mistake the operator made.
    public static func fromEnvironment(_ env: [String: String]) -> EnvironmentSettings {
        let known = Set(Configuration.keys.map(\.key))
        var out = EnvironmentSettings()
        for (k, v) in env where k.hasPrefix("POOL64_") {
            let key = normalize(String(k.dropFirst("POOL64_".count)))
            if key == "config" { continue }
            guard known.contains(key) else {
                out.ignored.append(k)
                continue
            }
            out.settings[key] = v
        }
        out.ignored.sort()
        if let url = env["DATABASE_URL"], out.settings["database-url"] == nil { out.settings["database-url"] = url }
        return out
    }

    /// `POOL_SIZE`, `pool_size` and `pool-size` all become `pool-size`.
    public static func normalize(_ key: String) -> String {
        String(key.trimmingCharacters().lowercased().map { $0 == "_" ? "-" : $0 })
    }

    /// file < environment < flags.
    public static func merge(file: [String: String], environment: [String: String], flags: [String: String])
        -> [String: String]
    {
        file.merging(environment) { $1 }.merging(flags) { $1 }
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}

// Printed by swift-service-lifecycle's debug logs (services are described with their fields) and by anything that
// interpolates a configuration: secrets never reach a log line.
extension Configuration: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        let fields = Mirror(reflecting: self).children.map { child -> String in
            let label = child.label ?? "_"
            switch label {
            case "databaseURL": return "\(label): \"\(Self.redactingPassword(databaseURL))\""
            case "adminToken": return "\(label): \(adminToken == nil ? "nil" : "<redacted>")"
            default: return "\(label): \(child.value)"
            }
        }
        return "Configuration(\(fields.joined(separator: ", ")))"
    }

    public var debugDescription: String { description }

    /// `url` with its password replaced by `***`: the userinfo password of a URL, or the `password=` value of a
    /// keyword/value connection string.
    public static func redactingPassword(_ url: String) -> String {
        if let scheme = url.range(of: "://") {
            let rest = url[scheme.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            guard let at = rest[..<authorityEnd].lastIndex(of: "@"),
                let colon = rest[..<at].firstIndex(of: ":")
            else { return redactingKeyword(url) }
            var out = url
            out.replaceSubrange(rest.index(after: colon)..<at, with: "***")
            // Query parameters may carry one too (`?password=`).
            return redactingKeyword(out)
        }
        return redactingKeyword(url)
    }

    /// Replaces the value after each `password=` (keyword/value form or a URL query) up to the next space or `&`.
    private static func redactingKeyword(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let r = rest.range(of: "password=") {
            out += rest[..<r.upperBound]
            out += "***"
            var end = r.upperBound
            if end < rest.endIndex, rest[end] == "'" {
                // Quoted value: up to the closing quote.
                end = rest[rest.index(after: end)...].firstIndex(of: "'").map { rest.index(after: $0) } ?? rest.endIndex
            } else {
                end = rest[end...].firstIndex { $0 == " " || $0 == "&" } ?? rest.endIndex
            }
            rest = rest[end...]
        }
        return out + rest
    }
}
