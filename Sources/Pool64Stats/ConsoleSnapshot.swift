import Foundation

/// Everything the PgBouncer-compatible admin console (`SHOW …`) and the paged `/stats` views report, taken at once on
/// the proxy loop so the views agree with each other. `stats` is the same snapshot `/stats` renders.
public struct ConsoleSnapshot: Sendable, Equatable {
    public var stats: StatsSnapshot
    public var clients: [ClientInfo]
    public var servers: [ServerInfo]
    public var databases: [DatabaseInfo]
    /// Every setting as `SHOW CONFIG` lists it.
    public var config: [ConfigEntry]
    /// When the process started.
    public var startedAt: Date
    /// When the snapshot was taken.
    public var takenAt: Date

    public init(
        stats: StatsSnapshot, clients: [ClientInfo], servers: [ServerInfo], databases: [DatabaseInfo],
        config: [ConfigEntry], startedAt: Date, takenAt: Date
    ) {
        self.stats = stats
        self.clients = clients
        self.servers = servers
        self.databases = databases
        self.config = config
        self.startedAt = startedAt
        self.takenAt = takenAt
    }
}

/// One client connection, with what PgBouncer's `SHOW CLIENTS` reports.
public struct ClientInfo: Codable, Sendable, Equatable {
    /// pool64's client number (PgBouncer's `id` column and `KILL_CLIENT` argument).
    public var id: Int
    public var user: String
    public var database: String
    /// `active` (has a server or is idle between transactions), `waiting` (queued for a server), `login`.
    public var state: String
    public var address: String
    public var port: Int
    public var localAddress: String
    public var localPort: Int
    /// Seconds since the Unix epoch.
    public var connectTime: Double
    /// Last request (seconds since the Unix epoch).
    public var requestTime: Double
    /// How long it has waited for a server so far, microseconds (0 when not waiting).
    public var waitMicros: UInt64
    /// The server connection it holds now (PgBouncer's `link`).
    public var serverID: Int?
    /// TLS protocol and cipher, empty for plaintext.
    public var tls: String
    public var applicationName: String
    /// Named statements it has prepared.
    public var preparedStatements: Int
    /// Pinned to a server connection by session state (transaction mode).
    public var pinned: Bool

    public init(
        id: Int, user: String, database: String, state: String, address: String, port: Int, localAddress: String,
        localPort: Int, connectTime: Double, requestTime: Double, waitMicros: UInt64, serverID: Int?, tls: String,
        applicationName: String, preparedStatements: Int, pinned: Bool
    ) {
        self.id = id
        self.user = user
        self.database = database
        self.state = state
        self.address = address
        self.port = port
        self.localAddress = localAddress
        self.localPort = localPort
        self.connectTime = connectTime
        self.requestTime = requestTime
        self.waitMicros = waitMicros
        self.serverID = serverID
        self.tls = tls
        self.applicationName = applicationName
        self.preparedStatements = preparedStatements
        self.pinned = pinned
    }

    enum CodingKeys: String, CodingKey {
        case id, user, database, state, address, port, tls, pinned
        case localAddress = "local_address"
        case localPort = "local_port"
        case connectTime = "connect_time"
        case requestTime = "request_time"
        case waitMicros = "wait_us"
        case serverID = "server_id"
        case applicationName = "application_name"
        case preparedStatements = "prepared_statements"
    }
}

/// One server connection, with what PgBouncer's `SHOW SERVERS` reports plus the route it took.
public struct ServerInfo: Codable, Sendable, Equatable {
    public var id: Int
    public var user: String
    public var database: String
    /// `active` (leased), `idle`, `used` (being reset before reuse).
    public var state: String
    /// The address dialled (numeric), and its port.
    public var address: String
    public var port: Int
    public var localAddress: String
    public var localPort: Int
    public var connectTime: Double
    public var requestTime: Double
    /// The client it serves now (PgBouncer's `link`).
    public var clientID: Int?
    /// The PostgreSQL backend's pid.
    public var remotePID: Int32
    public var tls: String
    public var applicationName: String
    /// Statements prepared on it.
    public var preparedStatements: Int
    /// Marked to be closed when released (RECONNECT, lifetime).
    public var closeNeeded: Bool
    /// `ipv6`, `nat64` or `ipv4`.
    public var route: String

    public init(
        id: Int, user: String, database: String, state: String, address: String, port: Int, localAddress: String,
        localPort: Int, connectTime: Double, requestTime: Double, clientID: Int?, remotePID: Int32, tls: String,
        applicationName: String, preparedStatements: Int, closeNeeded: Bool, route: String
    ) {
        self.id = id
        self.user = user
        self.database = database
        self.state = state
        self.address = address
        self.port = port
        self.localAddress = localAddress
        self.localPort = localPort
        self.connectTime = connectTime
        self.requestTime = requestTime
        self.clientID = clientID
        self.remotePID = remotePID
        self.tls = tls
        self.applicationName = applicationName
        self.preparedStatements = preparedStatements
        self.closeNeeded = closeNeeded
        self.route = route
    }

    enum CodingKeys: String, CodingKey {
        case id, user, database, state, address, port, tls, route
        case localAddress = "local_address"
        case localPort = "local_port"
        case connectTime = "connect_time"
        case requestTime = "request_time"
        case clientID = "client_id"
        case remotePID = "remote_pid"
        case applicationName = "application_name"
        case preparedStatements = "prepared_statements"
        case closeNeeded = "close_needed"
    }
}

/// One database clients can name, as PgBouncer's `SHOW DATABASES` reports it.
public struct DatabaseInfo: Codable, Sendable, Equatable {
    /// The name clients use.
    public var name: String
    /// Host and port of the server (the first of a multi-host URL).
    public var host: String
    public var port: Int
    /// The database name on the server.
    public var serverDatabase: String
    public var poolSize: Int
    public var minPoolSize: Int
    public var poolMode: String
    /// Server connections open to it now, over every user.
    public var currentConnections: Int
    public var paused: Bool
    public var disabled: Bool

    public init(
        name: String, host: String, port: Int, serverDatabase: String, poolSize: Int, minPoolSize: Int,
        poolMode: String, currentConnections: Int, paused: Bool, disabled: Bool
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.serverDatabase = serverDatabase
        self.poolSize = poolSize
        self.minPoolSize = minPoolSize
        self.poolMode = poolMode
        self.currentConnections = currentConnections
        self.paused = paused
        self.disabled = disabled
    }
}

/// One setting as `SHOW CONFIG` lists it (secrets shown as `***`).
public struct ConfigEntry: Codable, Sendable, Equatable {
    public var key: String
    public var value: String
    public var defaultValue: String
    /// Whether `SET key = value` / RELOAD can change it without a restart.
    public var changeable: Bool

    public init(key: String, value: String, defaultValue: String, changeable: Bool) {
        self.key = key
        self.value = value
        self.defaultValue = defaultValue
        self.changeable = changeable
    }
}
