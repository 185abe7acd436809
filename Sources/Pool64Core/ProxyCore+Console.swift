import CPool64Sys
import Foundation
import Glibc
import NIOCore
import Pool64Resolver
import Pool64Stats
import Pool64Wire

/// What the virtual admin database (`pgbouncer` / `pool64`) runs. The core authenticates the client, checks it is an
/// admin or stats user, and hands each simple Query's text here; the engine (Pool64Console) answers with complete
/// protocol bytes ending in ReadyForQuery. `reply` may be called on any thread.
public protocol AdminConsole: Sendable {
    func execute(
        query: String, user: String, client: String, isAdmin: Bool,
        reply: @escaping @Sendable (ByteBuffer) -> Void)
}

/// A maintenance command that could not run, with PgBouncer's wording where it has one.
public struct ConsoleControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public var sqlstate: String
    public var message: String
    public init(_ sqlstate: String, _ message: String) {
        self.sqlstate = sqlstate
        self.message = message
    }
    public var description: String { message }
}

extension ProxyCore {
    /// Database names that reach the admin console instead of a pool (PgBouncer's `pgbouncer`, and pool64's own).
    public static let consoleDatabases: Set<String> = ["pgbouncer", "pool64"]

    // MARK: Views

    /// Everything the console's SHOW commands and the paged HTTP views read, in one consistent copy.
    public func consoleSnapshot(resolver: ResolverSnapshot) -> EventLoopFuture<ConsoleSnapshot> {
        snapshot(resolver: resolver).flatMap { [self] stats in
            loop.submit { [self] in
                let now = Date()
                let nowTick = NIODeadline.now()
                func epoch(_ t: NIODeadline) -> Double {
                    now.timeIntervalSince1970 - Double((nowTick - t).nanoseconds) / 1e9
                }
                var clients: [ClientInfo] = []
                var seen = Set<Int>()
                for s in Array(sessions.values) + Array(loggingIn.values) where seen.insert(s.id).inserted {
                    clients.append(s.info(epoch: epoch, now: nowTick))
                }
                clients.sort { $0.id < $1.id }
                var servers: [ServerInfo] = []
                for pool in pools.values {
                    for server in pool.all.values { servers.append(server.info(epoch: epoch)) }
                }
                servers.sort { $0.id < $1.id }
                return ConsoleSnapshot(
                    stats: stats, clients: clients, servers: servers, databases: databaseInfos(),
                    config: configEntries(), startedAt: startedAt, takenAt: now)
            }
        }
    }

    private func databaseInfos() -> [DatabaseInfo] {
        let endpoint = connectionString.endpoints.first
        var names = Set(pools.keys.map(\.database))
        names.insert(connectionString.database)
        return names.sorted().map { name in
            let its = pools.values.filter { $0.key.database == name }
            return DatabaseInfo(
                name: name, host: endpoint?.host ?? "", port: endpoint?.port ?? 5432, serverDatabase: name,
                poolSize: config.poolSize, minPoolSize: config.minPoolSize, poolMode: config.poolMode.rawValue,
                currentConnections: its.reduce(0) { $0 + $1.all.count },
                paused: pausedAll || pausedDatabases.contains(name), disabled: disabledDatabases.contains(name))
        }
    }

    private func configEntries() -> [ConfigEntry] {
        let secret: Set<String> = ["database-url", "admin-token"]
        let current = config.settings
        return Configuration.keys.map { key, _ in
            var value = current[key] ?? ""
            if secret.contains(key), !value.isEmpty { value = "***" }
            return ConfigEntry(
                key: key, value: value, defaultValue: Configuration.defaults[key] ?? "",
                changeable: Configuration.reloadableKeys.contains(key))
        }
    }

    // MARK: Maintenance

    private func pools(of database: String?) -> [Pool] {
        pools.values.filter { database == nil || $0.key.database == database }
    }

    private func checkKnown(_ database: String?) throws {
        guard let database else { return }
        guard database == connectionString.database || pools.keys.contains(where: { $0.database == database }) else {
            throw ConsoleControlError("08P01", "no such database: \(database)")
        }
    }

    /// PAUSE [db]: waits for every server connection of the database (or all) to be released and closes them;
    /// clients queue meanwhile. Completes when no server connection is left.
    public func pause(database: String?) -> EventLoopFuture<Void> {
        loop.flatSubmit { [self] in
            do {
                try checkKnown(database)
                if let database {
                    guard !pausedAll, !pausedDatabases.contains(database) else {
                        throw ConsoleControlError("08P01", "database \(database) is already paused")
                    }
                    pausedDatabases.insert(database)
                } else {
                    guard !pausedAll else { throw ConsoleControlError("08P01", "already suspended/paused") }
                    pausedAll = true
                }
            } catch {
                return loop.makeFailedFuture(error)
            }
            return whenAll(pools(of: database)) { pool, done in pool.pause(done: done) }
        }
    }

    /// RESUME [db].
    public func resume(database: String?) -> EventLoopFuture<Void> {
        loop.submit { [self] () throws in
            if let database {
                guard pausedDatabases.remove(database) != nil else {
                    throw ConsoleControlError("08P01", "database \(database) is not paused")
                }
            } else {
                guard pausedAll || !pausedDatabases.isEmpty else {
                    throw ConsoleControlError("08P01", "pooler is not paused/suspended")
                }
                pausedAll = false
                pausedDatabases = []
            }
            for pool in pools(of: database) where !isPaused(pool.key.database) { pool.resume() }
        }
    }

    /// RECONNECT [db]: server connections close as they become free; new ones use the settings in force now.
    public func reconnect(database: String?) -> EventLoopFuture<Void> {
        loop.submit { [self] () throws in
            try checkKnown(database)
            for pool in pools(of: database) { pool.reconnect() }
        }
    }

    /// WAIT_CLOSE [db]: completes once every connection RECONNECT marked has closed.
    public func waitClose(database: String?) -> EventLoopFuture<Void> {
        loop.flatSubmit { [self] in
            whenAll(pools(of: database)) { pool, done in pool.waitClose(done: done) }
        }
    }

    /// KILL db: drops every client and server connection of the database now; it stays paused until RESUME.
    public func kill(database: String) -> EventLoopFuture<Void> {
        loop.submit { [self] () throws in
            try checkKnown(database)
            pausedDatabases.insert(database)
            for s in Array(sessions.values) + Array(loggingIn.values) where s.database == database {
                s.fail(ErrorFields.fatal("57P01", "terminating connection due to administrator command (KILL)"),
                       reason: "killed by admin")
            }
            for pool in pools(of: database) {
                pool.paused = true
                for server in Array(pool.allServers) { pool.closeServer(server, reason: "killed by admin") }
            }
        }
    }

    /// KILL_CLIENT id.
    public func killClient(id: Int) -> EventLoopFuture<Void> {
        loop.submit { [self] () throws in
            guard let s = (sessions.values.first { $0.id == id } ?? loggingIn[id]) else {
                throw ConsoleControlError("08P01", "client \(id) not found")
            }
            s.fail(ErrorFields.fatal("57P01", "terminating connection due to administrator command (KILL_CLIENT)"),
                   reason: "killed by admin")
        }
    }

    /// DISABLE db / ENABLE db: new clients of the database are refused (PgBouncer's error) while disabled.
    public func setEnabled(_ enabled: Bool, database: String) -> EventLoopFuture<Void> {
        loop.submit { [self] () throws in
            try checkKnown(database)
            if enabled { disabledDatabases.remove(database) } else { disabledDatabases.insert(database) }
        }
    }

    /// Starts `each` on every pool (relay loop) and completes once all of them have called back.
    private func whenAll(_ targets: [Pool], _ each: (Pool, @escaping () -> Void) -> Void) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        var left = targets.count
        if left == 0 { promise.succeed(()) }
        for pool in targets {
            each(pool) {
                left -= 1
                if left == 0 { promise.succeed(()) }
            }
        }
        return promise.futureResult
    }

    func isPaused(_ database: String) -> Bool { pausedAll || pausedDatabases.contains(database) }
}

extension ClientSession {
    /// This client as SHOW CLIENTS reports it.
    func info(epoch: (NIODeadline) -> Double, now: NIODeadline) -> ClientInfo {
        let state: String
        switch phase {
        case .startup, .scram, .md5, .welcome: state = "login"
        case .ready, .console, .closed: state = waiting ? "waiting" : "active"
        }
        let (peerHost, peerPort) = peerAddress.hostAndPort
        var local = ("", 0)
        if let socket = transport as? SocketConnection { local = socketAddress(socket.fd, peer: false) }
        let waited = waitStarted.map { UInt64(max(0, (now - $0).nanoseconds) / 1000) } ?? 0
        return ClientInfo(
            id: id, user: user, database: database, state: state, address: peerHost, port: peerPort,
            localAddress: local.0, localPort: local.1, connectTime: epoch(connectedAt), requestTime: epoch(lastActivity),
            waitMicros: waited, serverID: server?.id, tls: transport is ChannelTransport ? "TLS" : "",
            applicationName: parameters["application_name"] ?? "", preparedStatements: statements.count, pinned: pinned)
    }
}

extension ServerConnection {
    /// This server connection as SHOW SERVERS reports it.
    func info(epoch: (NIODeadline) -> Double) -> ServerInfo {
        let stateName: String
        switch state {
        case .idle: stateName = "idle"
        case .active: stateName = "active"
        case .resetting: stateName = "used"
        case .closed: stateName = "closed"
        }
        let fd = pq.socket
        let remote = fd >= 0 ? socketAddress(fd, peer: true) : ("", 0)
        let local = fd >= 0 ? socketAddress(fd, peer: false) : ("", 0)
        return ServerInfo(
            id: id, user: pool.key.user, database: pool.key.database, state: stateName,
            address: remote.0.isEmpty ? address : remote.0, port: remote.1, localAddress: local.0, localPort: local.1,
            connectTime: epoch(createdAt), requestTime: epoch(lastUsed), clientID: client?.id,
            remotePID: pq.backendPID, tls: pq.usesTLS ? "TLS" : "", applicationName: parameters["application_name"] ?? "",
            preparedStatements: prepared.count, closeNeeded: closeNeeded, route: pool.stats.route)
    }
}

/// The numeric address and port of a socket's local end or its peer (IPv4-mapped shown as IPv4).
func socketAddress(_ fd: Int32, peer: Bool) -> (String, Int) {
    var host = [CChar](repeating: 0, count: 64)
    var port: Int32 = 0
    let r = peer ? cpool64_peer_address(fd, &host, 64, &port) : cpool64_local_address(fd, &host, 64, &port)
    guard r == 0 else { return ("", 0) }
    return (ListenAddress.unmapped(String(cString: host)), Int(port))
}
