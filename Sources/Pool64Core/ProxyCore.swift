import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import CPool64Sys
import Glibc
import Pool64Stats
import Pool64Wire

/// The proxy's shared state: pools, the cancel-key registry, counters and the dialer. Every mutable field is
/// confined to one event loop (`loop`), which also runs every client and server channel, so the relay needs no
/// locks and no thread hops (DESIGN "Facts": hops are the cost to avoid). `@unchecked Sendable` because closures
/// that capture it hop back onto `loop` before touching anything.
public final class ProxyCore: @unchecked Sendable {
    /// Current settings; replaced by `reload(_:)` on SIGHUP. Read on the proxy loop.
    public private(set) var config: Configuration
    public let logger: Logger
    /// Whether `logger` passes debug messages, re-read by the once-a-second tick (the level can be reloaded): the
    /// per-connection debug lines check this Bool instead of copying a logger and asking its handler each time.
    private(set) var logsDebug: Bool
    /// Runs every client and plaintext server socket and all proxy state.
    public let loop: RelayLoop
    /// Runs TLS channels (NIOSSL clients, libpq TLS servers); their plaintext hops to `loop`. Started on first use
    /// (relay loop only), so a deployment without TLS runs no extra thread.
    lazy var tlsGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let dialer: LibPQDialer
    let planner: DialPlanner
    /// The database URL in force; SIGHUP replaces it for new dials (RECONNECT replaces open connections).
    private(set) var connectionString: ConnectionString
    private(set) var credentials: CredentialStore
    let tlsContext: NIOSSLContext?
    let startedAt = Date()

    var pools: [PoolKey: Pool] = [:]
    var sessions: [Int32: ClientSession] = [:]
    /// Clients still in startup or authentication, for the login timeout.
    var loggingIn: [Int: ClientSession] = [:]
    /// Numbers for clients' parameter sets (`ClientSession.parametersKey`).
    var parameterSets = ParameterSetNumbers()
    var clientCount = 0
    var counters = GlobalCounters()
    public private(set) var draining = false
    /// The listeners were handed to a successor: connected clients are still served as usual, new ones go to the
    /// successor, and `/readyz` says not ready so an orchestrator stops routing here.
    public private(set) var retiring = false
    /// Bits 27–30 of every process ID this process issues (`CancelKey`). Set before the listeners open.
    public var cancelKeyTag: UInt8 = 0
    /// Where cancel requests for another process's keys go (the predecessor after a hand-over); nil drops them.
    public var forwardCancel: (@Sendable (_ processID: Int32, _ secretKey: Int32) -> Void)?
    /// The admin console engine (`database pgbouncer`); nil refuses console logins.
    public var console: (any AdminConsole)?
    /// PAUSE without a database, and PAUSE / KILL per database, until RESUME.
    var pausedAll = false
    var pausedDatabases: Set<String> = []
    /// DISABLE db: new clients of these databases are refused.
    var disabledDatabases: Set<String> = []
    var listeners: [String] = []
    var adminListeners: [String] = []
    private var nextClientID = 0
    private var nextServerID = 0
    private var maintenance: RepeatedTask?

    public init(config: Configuration, loop: RelayLoop, logger: Logger, planner: DialPlanner) throws {
        self.config = config
        self.loop = loop
        self.logger = logger
        logsDebug = logger.logLevel <= .debug
        self.planner = planner
        connectionString = try ConnectionString(parsing: config.databaseURL)
        credentials = try Self.loadCredentials(config: config, url: connectionString)
        if let cert = config.tlsCertificate, let key = config.tlsKey {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            tlsContext = try NIOSSLContext(configuration: tls)
        } else {
            tlsContext = nil
        }
        dialer = LibPQDialer()
    }

    /// The database URL's user (with its password) plus the auth file's users.
    static func loadCredentials(config: Configuration, url: ConnectionString) throws -> CredentialStore {
        var store = CredentialStore()
        if let password = url.password {
            store.add(.plaintext(user: url.user, password: password))
        } else {
            store.add(UserCredential(user: url.user, password: nil, scram: nil, md5: nil))
        }
        if let path = config.authFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError(key: "auth-file", value: path, reason: "cannot read file")
            }
            for c in try CredentialStore.parseAuthFile(text) { store.add(c) }
        }
        return store
    }

    /// SIGHUP: applies what can change at run time (pool sizes, timeouts, auth file, admin token is the admin
    /// server's) without dropping clients. Validates everything first and applies nothing on error. Returns the
    /// settings that changed but need a restart.
    public func reload(_ new: Configuration) throws -> [String] {
        let url = try ConnectionString(parsing: new.databaseURL)
        let store = try Self.loadCredentials(config: new, url: url)
        var restart: [String] = []
        if new.listen != config.listen { restart.append("listen") }
        if new.adminListen != config.adminListen { restart.append("admin-listen") }
        if new.poolMode != config.poolMode { restart.append("pool-mode") }
        if new.project != config.project { restart.append("project") }
        if new.tlsCertificate != config.tlsCertificate || new.tlsKey != config.tlsKey { restart.append("tls-cert") }
        if new.handoverSocket != config.handoverSocket { restart.append("handover-socket") }
        var applied = new
        applied.handoverSocket = config.handoverSocket
        // Settings that need a restart keep their running values so the process stays consistent.
        applied.listen = config.listen
        applied.adminListen = config.adminListen
        applied.poolMode = config.poolMode
        applied.project = config.project
        applied.tlsCertificate = config.tlsCertificate
        applied.tlsKey = config.tlsKey
        config = applied
        credentials = store
        // New dials use the new URL; connections already open stay until recycled or RECONNECT.
        connectionString = url
        for pool in pools.values { pool.resized() }
        return restart
    }

    // MARK: Registry

    func pool(database: String, user: String) -> Pool {
        let key = PoolKey(database: database, user: user)
        if let p = pools[key] { return p }
        let p = Pool(key: key, proxy: self)
        p.paused = isPaused(database)
        pools[key] = p
        return p
    }

    func newClientID() -> Int {
        nextClientID += 1
        return nextClientID
    }

    /// Gives a welcomed client its BackendKeyData; pool64's own keys, since the client may use many servers. The
    /// process ID carries `cancelKeyTag` (`CancelKey`), so a successor process can route a cancel back here.
    func register(_ session: ClientSession) -> (Int32, Int32) {
        var pid: Int32
        repeat {
            pid = CancelKey.processID(tag: cancelKeyTag, random: UInt32(bitPattern: SecureRandom.int32()))
        } while pid == 0 || sessions[pid] != nil
        sessions[pid] = session
        return (pid, SecureRandom.int32())
    }

    func unregister(_ session: ClientSession, reason: String) {
        if session.processID != 0, sessions[session.processID] === session { sessions[session.processID] = nil }
        clientCount -= 1
        countClose(reason)
    }

    func countClose(_ reason: String) {
        counters.closeReasons[reason, default: 0] &+= 1
    }

    /// A CancelRequest: cancels the query of the client owning the key on whichever server runs it, and nothing else.
    public func cancel(processID: Int32, secretKey: Int32) {
        if CancelKey.tag(of: processID) != cancelKeyTag, let forward = forwardCancel {
            // Issued by the process this one took the listeners from (or one before it): its client, its query.
            counters.cancelsForwarded &+= 1
            forward(processID, secretKey)
            return
        }
        guard let s = sessions[processID], s.secretKey == secretKey else {
            logger.info("cancel request with unknown key")
            return
        }
        guard let server = s.server, let handle = server.cancelHandle else { return }
        let logger = self.logger
        // PQcancel blocks (it connects to the server), so it runs off the event loop.
        DispatchQueue.global().async {
            if let err = handle.cancel() { logger.info("cancel failed", metadata: ["error": "\(err)"]) }
        }
    }

    // MARK: Dialing

    func dial(for pool: Pool) {
        var base: [String: String] = connectionString.options
        base["dbname"] = pool.key.database
        base["user"] = pool.key.user
        if pool.key.user != connectionString.user {
            base["password"] = credentials[pool.key.user]?.password
        }
        if base["fallback_application_name"] == nil { base["fallback_application_name"] = "pool64" }
        if base["sslmode"] == nil { base["sslmode"] = ServerTLS.defaultSSLMode }
        let parameters = base
        let endpoints = connectionString.endpoints
        let timeout = Double(base["connect_timeout"] ?? "") ?? 10
        planner.plan(endpoints: endpoints) { [self] plan in
            loop.execute { [self] in
                switch plan {
                case .failure(let error):
                    pool.dialFailed("no address to reach the database: \(error)", sqlstate: "08001")
                case .success(let plan):
                    let race = HappyEyeballsDial(proxy: self, plan: plan, base: parameters, timeout: timeout)
                    race.completion = { [self] result in dialed(result, pool: pool, tried: race.tried) }
                    race.start()
                }
            }
        }
    }

    private func dialed(_ result: Result<(LibPQConnection, DialPlan.Attempt), DialError>, pool: Pool, tried: [String]) {
        switch result {
        case .failure(let e):
            pool.dialFailed("could not connect to the database: \(e)", sqlstate: Self.sqlstate(forDialError: e.message))
        case .success(let (pq, attempt)):
            if draining {
                pq.finish()
                pool.dialing -= 1
                return
            }
            pq.drainNotifies()
            nextServerID += 1
            let server = ServerConnection(
                id: nextServerID, pool: pool, pq: pq, address: attempt.address, now: .now(),
                allocator: ByteBufferAllocator())
            let fd = pq.duplicateSocket()
            if pq.usesTLS {
                let t = ChannelTransport(relay: loop)
                t.delegate = server
                server.transport = t
                t.adopt(
                    fd: fd, group: tlsGroup,
                    handlers: { ch in try ServerTLS.install(on: ch, pq: pq) },
                    failed: { e in
                        server.transport = nil
                        pq.finish()
                        pool.dialFailed("could not adopt server socket: \(e)", sqlstate: "08006")
                    })
                // Reads only start once the channel is up; the pool may lease it now (writes queue until then).
                pool.dialSucceeded(server, route: attempt.route, tried: tried)
                return
            }
            guard cpool64_set_nonblocking(fd) == 0 else {
                Glibc.close(fd)
                pq.finish()
                pool.dialFailed("could not adopt server socket", sqlstate: "08006")
                return
            }
            let conn = SocketConnection(fd: fd, loop: loop)
            conn.delegate = server
            server.transport = conn
            guard conn.start() else {
                server.transport = nil
                pq.finish()
                pool.dialFailed("could not watch server socket", sqlstate: "08006")
                return
            }
            pool.dialSucceeded(server, route: attempt.route, tried: tried)
        }
    }

    /// libpq reports connection failures as text only; map the common ones to the SQLSTATE PostgreSQL would send.
    static func sqlstate(forDialError message: String) -> String {
        if message.contains("password authentication failed") { return "28P01" }
        if message.contains("does not exist") && message.contains("database") { return "3D000" }
        if message.contains("role") && message.contains("does not exist") { return "28000" }
        if message.contains("too many") { return "53300" }
        if message.contains("shutting down") { return "57P03" }
        if message.contains("no pg_hba.conf entry") { return "28000" }
        return "08006"
    }

    // MARK: Lifecycle

    /// Starts the periodic maintenance (timeouts, lifetimes, min pool size).
    public func start() {
        maintenance = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
            tick()
        }
    }

    private func tick() {
        let now = NIODeadline.now()
        logsDebug = logger.logLevel <= .debug
        if config.clientLoginTimeout > 0, !loggingIn.isEmpty {
            let limit = TimeAmount.nanoseconds(Int64(config.clientLoginTimeout * 1e9))
            for s in Array(loggingIn.values) where now - s.connectedAt > limit {
                loggingIn[s.id] = nil
                s.loginTimedOut()
            }
        }
        for pool in pools.values {
            pool.maintain(now: now)
        }
        if config.clientIdleTimeout > 0 {
            let limit = TimeAmount.nanoseconds(Int64(config.clientIdleTimeout * 1e9))
            for s in sessions.values where s.server == nil && !s.waiting && now - s.lastActivity > limit {
                s.fail(ErrorFields.fatal("08P01", "client_idle_timeout"), reason: "client idle timeout")
            }
        }
    }

    /// Stops accepting work: new logins get 57P03, idle servers close, running transactions may finish.
    /// The listeners now belong to a successor; keep serving who is connected (`retiring`).
    public func retire() {
        retiring = true
    }

    /// Clients connected now, logging in or logged in.
    public var connectedClients: Int { clientCount }

    public func beginDrain() {
        draining = true
        for pool in pools.values { pool.drainIdle() }
    }


    /// Ends everything: clients get 57P01, servers close.
    public func terminateAll() {
        for s in Array(sessions.values) {
            s.fail(ErrorFields.fatal("57P01", "terminating connection due to administrator command (pool64 shutting down)"), reason: "shutdown")
        }
        for pool in pools.values {
            while let c = pool.waiters.popFirst() { c.fail(ErrorFields.fatal("57P01", "pool64 shutting down"), reason: "shutdown") }
            for s in Array(pool.allServers) { pool.closeServer(s, reason: "shutdown") }
        }
        maintenance?.cancel()
        dialer.shutdown()
    }
}

/// Gives each distinct set of client parameters a number, so a lease compares integers instead of dictionaries.
/// Numbers are never reused: when the table is full (clients can choose their parameters freely) it starts over,
/// and a set seen again gets a new number, which costs at most one extra synchronisation.
struct ParameterSetNumbers {
    private var numbers: [[String: String]: Int] = [:]
    private var next = 1
    let limit: Int

    init(limit: Int = 10_000) { self.limit = limit }

    mutating func number(for parameters: [String: String]) -> Int {
        if let n = numbers[parameters] { return n }
        if numbers.count >= limit { numbers.removeAll() }
        let n = next
        next += 1
        numbers[parameters] = n
        return n
    }
}
