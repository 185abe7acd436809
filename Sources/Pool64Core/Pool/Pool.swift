import Logging
import NIOCore
import Pool64Stats
import Pool64Wire

/// The ParameterStatus messages a new client is welcomed with: the pool's template, sorted and encoded once, with
/// each client's own startup values (application_name, client_encoding, …) written in their place.
struct WelcomeParameters {
    /// Each entry's key, value and where its message sits in `all`.
    private var entries: [(key: String, value: String, start: Int, end: Int)] = []
    private var index: [String: Int] = [:]
    /// All entries' messages back to back, in key order (what a client with no overrides gets).
    private var all = ByteBuffer()
    /// Welcomes already encoded, by `ClientSession.parametersKey` (equal parameters, equal key; keys are never
    /// reused). Logins from one application send the same startup values, so after the first the welcome is one
    /// copy instead of a lookup per parameter and a ParameterStatus encoded per override (~2,000 instructions).
    private var encoded: [Int: ByteBuffer] = [:]
    /// Bounds `encoded`: clients that each set a unique value (say application_name with a host name in it)
    /// would otherwise grow it without end.
    static let encodedLimit = 256

    init(_ template: [String: String]) {
        for (k, v) in template.sorted(by: { $0.key < $1.key }) {
            let start = all.writerIndex
            all.writeParameterStatus(k, v)
            index[k] = entries.count
            entries.append((k, v, start, all.writerIndex))
        }
    }

    /// Writes the welcome for a client whose startup asked for `parameters`, numbered `key`.
    mutating func write(to out: inout ByteBuffer, parameters: [String: String], key: Int) {
        if let b = encoded[key] {
            out.writeImmutableBuffer(b)
            return
        }
        var b = ByteBuffer()
        write(to: &b, parameters: parameters)
        if encoded.count >= Self.encodedLimit { encoded.removeAll(keepingCapacity: true) }
        encoded[key] = b
        out.writeImmutableBuffer(b)
    }

    /// Writes the welcome for a client whose startup asked for `parameters`.
    func write(to out: inout ByteBuffer, parameters: [String: String]) {
        // Most clients set one or two reported parameters (libpq: application_name); look those up instead of
        // every template entry in the client's dictionary, and copy the runs between them in one piece each.
        var overrides: [(index: Int, value: String)] = []
        for (k, v) in parameters {
            if let i = index[k], entries[i].value != v { overrides.append((i, v)) }
        }
        if overrides.isEmpty {
            out.writeImmutableBuffer(all)
            return
        }
        overrides.sort { $0.index < $1.index }
        var copied = 0
        for (i, value) in overrides {
            let e = entries[i]
            copy(copied..<e.start, to: &out)
            out.writeParameterStatus(e.key, value)
            copied = e.end
        }
        copy(copied..<all.writerIndex, to: &out)
    }

    private func copy(_ range: Range<Int>, to out: inout ByteBuffer) {
        all.withUnsafeReadableBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }
}

/// Identifies a pool: PgBouncer's (database, user) pair.
struct PoolKey: Hashable, Sendable {
    var database: String
    var user: String
}

/// Server connections for one (database, user), and the clients waiting for them. Confined to the proxy event loop;
/// its lists are its state, so SHOW POOLS-style counts are cheap reads (pgbouncer `src/objects.c`).
/// `@unchecked Sendable`: confined to the proxy event loop; closures from other threads hop there first.
final class Pool: @unchecked Sendable {
    let key: PoolKey
    // unowned(unsafe): the proxy outlives its pools (see ClientSession.proxy).
    unowned(unsafe) let proxy: ProxyCore
    var logger: Logger

    private(set) var idle: [ServerConnection] = []
    private(set) var all: [Int: ServerConnection] = [:]
    var waiters = WaitQueue<ClientSession>()
    var welcomeWaiters: [ClientSession] = []
    /// `/readyz` checks waiting for a dial result.
    var probes: [ReadinessProbe] = []
    var dialing = 0
    /// Parameters new clients are welcomed with, from the first server connection.
    var template: [String: String]? {
        didSet { welcome = WelcomeParameters(template ?? [:]) }
    }
    /// `template` encoded once as the ParameterStatus messages a login sends (not per login).
    var welcome = WelcomeParameters([:])
    var lastDialError: (message: String, sqlstate: String)?
    var nextDialAllowed = NIODeadline.uptimeNanoseconds(0)
    var clients = 0
    var pinnedClients = 0
    /// PAUSE: no server connection is leased or dialled, each one closes as it is released, and clients queue until
    /// RESUME (PgBouncer's PAUSE, so the database can restart under running clients).
    var paused = false
    /// Called once this pool has no server connection and no dial in flight (PAUSE returns then).
    var quietWaiters: [() -> Void] = []
    /// Server connections marked by RECONNECT that have not closed yet; WAIT_CLOSE returns at 0.
    var closeNeededCount = 0
    var closeWaiters: [() -> Void] = []
    /// Protocol-level statement text (with parameter types and search_path) → server-side name, shared by clients of
    /// this pool.
    private var statementNames: [String: String] = [:]
    /// The result shape the latest Describe of each server name reported on any server: what a client whose Parse
    /// is answered without a server is taken to have been given (`ClientStatement.shape`).
    private(set) var latestShapes: [String: Int] = [:]
    private var nextStatementID = 0
    var stats: PoolSnapshot
    var xactHistogram = LatencyHistogram()
    var waitHistogram = LatencyHistogram()

    init(key: PoolKey, proxy: ProxyCore) {
        self.key = key
        self.proxy = proxy
        var l = proxy.logger
        l[metadataKey: "db"] = .string(key.database)
        l[metadataKey: "user"] = .string(key.user)
        logger = l
        stats = PoolSnapshot(database: key.database, user: key.user, poolMode: proxy.config.poolMode.rawValue)
    }

    /// Server name for a (query, parameter types) pair, the same for every client of this pool whose session has the
    /// same `searchPath` (PostgreSQL resolves a statement's names with the search_path it was prepared under).
    func serverStatementName(query: String, types: [UInt32], searchPath: String?) -> String {
        var k = types.isEmpty ? query : query + "\u{0}" + types.map(String.init).joined(separator: ",")
        if let searchPath { k += "\u{0}\u{0}" + searchPath }
        if let n = statementNames[k] { return n }
        nextStatementID += 1
        let n = "pool64_\(nextStatementID)"
        statementNames[k] = n
        return n
    }

    /// A server name no other statement has, for a pinned client's statement (`ClientSession.poolStatementName`);
    /// not remembered by text, so a long-lived pool does not collect them.
    func privateStatementName() -> String {
        nextStatementID += 1
        return "\(Self.privatePrefix)\(nextStatementID)"
    }

    static let privatePrefix = "pool64_p"


    // MARK: Prepared statements

    /// True when `acquire` would not queue behind busy connections: one is idle, or the pool may dial another.
    var hasServerWithoutWaiting: Bool {
        waiters.isEmpty && (idle.contains { $0.state == .idle } || all.count + dialing < proxy.config.poolSize)
    }

    /// Applies what became of the named Parses and Closes `server` was sent (`ResponseTracker.StatementEvent`).
    func settleStatements(_ server: ServerConnection) {
        for event in server.tracker.takeStatementEvents() {
            switch event {
            case .prepared:
                // Believed prepared since it was sent (`ServerConnection.addPrepared`).
                break
            case .failed(let name, let clientName):
                // Not on the server: the next Bind or Describe prepares it again (and gets the error again if the
                // SQL is still invalid) instead of failing on a statement that does not exist.
                server.prepared.removeValue(forKey: name)
                server.shapes[name] = nil
                // The client's own Parse failed: as on PostgreSQL, it holds no statement by that name.
                if let clientName, let client = server.client { client.parseFailed(clientName, serverName: name) }
            case .evictionSkipped(let name):
                // Still on the server: keep it known (first in line for the next eviction) so it is not prepared
                // twice.
                server.prepared[name] = 0
            case .deallocated(let name, let clientName):
                if name.isEmpty {
                    server.forgetPrepared()
                } else {
                    server.prepared.removeValue(forKey: name)
                    server.shapes[name] = nil
                }
                server.client?.deallocated(clientName, serverName: name)
            case .described(let name, let clientName, let shape):
                // Only while the server still holds that copy (an eviction may have come between).
                guard server.prepared[name] != nil else { break }
                server.shapes[name] = shape
                // A private name's copy is its client's alone: nothing to compare it with, nothing to remember.
                let previous = name.hasPrefix(Self.privatePrefix) ? nil : latestShapes.updateValue(shape, forKey: name)
                if let clientName, let client = server.client {
                    client.statementShaped(
                        clientName, serverName: name, shape: shape, stale: previous != nil && previous != shape)
                }
            case .checked(let name, let clientName, let shape):
                let here = server.shapes[name]
                let latest = latestShapes[name]
                server.client?.statementShaped(
                    clientName, serverName: name, shape: shape,
                    stale: (here != nil && here != shape) || (latest != nil && latest != shape))
            case .checkFailed(let name, let clientName):
                server.client?.parseFailed(clientName, serverName: name)
            }
        }
    }

    /// The server's error `frame` with each `"server name"` in `names` (server name → client name) replaced by the
    /// client's `"name"`, so a duplicate prepare reads as on PostgreSQL.
    static func namingClientStatements(_ frame: ByteBuffer, _ names: [String: String]) -> ByteBuffer {
        var frame = frame
        for (serverName, clientName) in names {
            if let renamed = BackendMessageReader.replacing(
                "\"\(serverName)\"", with: "\"\(clientName)\"", inErrorFrame: frame)
            {
                frame = renamed
            }
        }
        return frame
    }

    /// The error PostgreSQL raises for a cached plan whose result type changed, known by its routine field
    /// (`RevalidateCachedQuery`, plancache.c), which is never translated as the message may be.
    static func isStalePlanError(_ body: ByteBuffer) -> Bool {
        BackendMessageReader.fields(ofErrorBody: body)[UInt8(ascii: "R")] == "RevalidateCachedQuery"
    }

    /// PostgreSQL's error for a prepared statement whose result shape changed, for a server copy prepared after the
    /// change (`ClientSession.sendStale`).
    static let stalePlanError: ByteBuffer = {
        var b = ByteBuffer()
        b.writeErrorResponse(ErrorFields(sqlstate: "0A000", message: "cached plan must not change result type"))
        return b
    }()

    /// The reply to a client's `DEALLOCATE name` when `DEALLOCATE ALL` stood in for it (`ClientSession.deallocate`).
    static let deallocateComplete: ByteBuffer = {
        var b = ByteBuffer()
        b.writeCommandComplete("DEALLOCATE")
        return b
    }()

    /// A RowDescription or NoData answered a `.describeShape` on the fast path: settle it, and run a client message
    /// that waited for it.
    private func shapeDescribed(_ server: ServerConnection) {
        settleStatements(server)
        if let client = server.client, client.holdingForShape, server.tracker.shapeChecks == 0 {
            client.shapeArrived(server)
        }
    }

    /// A server said `cached plan must not change result type` (0A000) after DDL changed a table a shared statement
    /// reads. Statements are shared by text, so every server holding that text holds the stale plan: new Parses get
    /// fresh server names (prepared afresh wherever they run), as a new session on PostgreSQL would see the new
    /// table. Clients holding the old statement get 0A000 as they would on PostgreSQL, and re-prepare.
    func planInvalidated() {
        logger.info("a shared prepared statement's plan went stale (0A000); new Parses get fresh statements")
        statementNames.removeAll()
        latestShapes.removeAll()
    }

    // MARK: Welcome parameters

    /// Calls back when the pool knows the parameters to welcome clients with (needs one server connection).
    func awaitWelcome(_ client: ClientSession) {
        if template != nil {
            client.welcomeReady()
            return
        }
        welcomeWaiters.append(client)
        launchDials()
    }

    // MARK: Leasing

    /// A client needs a server connection.
    func acquire(_ client: ClientSession) {
        if let server = popIdle() {
            attach(server, to: client)
            return
        }
        client.waitStarted = proxy.loop.turnTime
        waiters.append(client)
        launchDials()
    }

    private func popIdle() -> ServerConnection? {
        while let s = idle.popLast() {
            if s.state == .idle { return s }
        }
        return nil
    }

    /// Removes a client that gave up waiting.
    func cancelWait(_ client: ClientSession) {
        waiters.remove(client)
        welcomeWaiters.removeAll { $0 === client }
    }

    private func attach(_ server: ServerConnection, to client: ClientSession) {
        server.state = .active
        server.client = client
        let now = proxy.loop.turnTime
        server.lastUsed = now
        if let started = client.waitStarted {
            let waited = UInt64(max(0, (now - started).nanoseconds) / 1000)
            stats.totalWaitTimeUs &+= waited
            waitHistogram.record(micros: waited)
            client.waitStarted = nil
        }
        client.attached(server)
    }

    /// The client is done with `server` (transaction finished, or the client left).
    /// `needsReset` asks for `DISCARD ALL` first (session mode, pinned clients).
    func release(_ server: ServerConnection, needsReset: Bool) {
        server.client = nil
        guard server.state == .active else { return }
        if proxy.draining || server.tracker.isIdle == false {
            // A connection still inside a transaction or mid-response is never handed to anyone else.
            closeServer(server, reason: proxy.draining ? "draining" : "released while busy")
            return
        }
        if needsReset {
            server.state = .resetting
            var q = ByteBuffer()
            q.writeQuery("DISCARD ALL")
            server.write(&q)
            var sink = ByteBuffer()
            server.tracker.expect(.query(swallow: true), out: &sink)
            server.flush()
            return
        }
        checkIn(server)
    }

    /// A server connection is free: give it to the longest waiter, or put it in the idle list.
    func checkIn(_ server: ServerConnection) {
        if paused || server.closeNeeded {
            closeServer(server, reason: paused ? "paused" : "reconnect")
            launchDials()
            return
        }
        let now = proxy.loop.turnTime
        if proxy.config.serverLifetime > 0,
            now - server.createdAt > .nanoseconds(Int64(proxy.config.serverLifetime * 1e9))
        {
            closeServer(server, reason: "server lifetime reached")
            launchDials()
            return
        }
        if all.count > proxy.config.poolSize {
            closeServer(server, reason: "pool size reduced")
            return
        }
        server.state = .idle
        server.lastUsed = now
        // Its last client may have paused it; idle connections keep reading so a server close is noticed.
        server.setReading(true)
        if let client = waiters.popFirst() {
            attach(server, to: client)
        } else {
            idle.append(server)
        }
    }

    func closeServer(_ server: ServerConnection, reason: String) {
        guard server.state != .closed else { return }
        logger.debug("closing server connection", metadata: ["server": "\(server.id)", "reason": "\(reason)"])
        server.close()
        all.removeValue(forKey: server.id)
        idle.removeAll { $0 === server }
        proxy.countClose(reason)
        if server.closeNeeded {
            closeNeededCount -= 1
            if closeNeededCount == 0 { runWaiters(&closeWaiters) }
        }
        if paused { notifyIfQuiet() }
    }

    // MARK: Maintenance commands (admin console)

    /// PAUSE: idle connections close now, leased ones when released; `done` runs once none is left.
    func pause(done: @escaping () -> Void) {
        paused = true
        quietWaiters.append(done)
        for s in idle where s.state == .idle { closeServer(s, reason: "paused") }
        notifyIfQuiet()
    }

    /// RESUME: queued clients get servers again.
    func resume() {
        paused = false
        runWaiters(&quietWaiters)
        launchDials()
    }

    /// RECONNECT: every connection closes as soon as it is free (idle ones now); new ones are dialled as needed,
    /// with the settings in force now.
    func reconnect() {
        for s in Array(all.values) where !s.closeNeeded {
            s.closeNeeded = true
            closeNeededCount += 1
            if s.state == .idle { closeServer(s, reason: "reconnect") }
        }
        launchDials()
    }

    /// WAIT_CLOSE: `done` runs once every connection RECONNECT marked has closed.
    func waitClose(done: @escaping () -> Void) {
        if closeNeededCount == 0 { return done() }
        closeWaiters.append(done)
    }

    private func notifyIfQuiet() {
        guard all.isEmpty, dialing == 0, !quietWaiters.isEmpty else { return }
        runWaiters(&quietWaiters)
    }

    private func runWaiters(_ list: inout [() -> Void]) {
        let run = list
        list = []
        for f in run { f() }
    }

    /// The server connection broke or closed.
    func serverLost(_ server: ServerConnection, reason: String) {
        guard server.state != .closed else { return }
        let client = server.client
        server.client = nil
        closeServer(server, reason: reason)
        if let client {
            client.serverLost(
                ErrorFields.fatal("08006", "server connection lost", detail: reason))
        }
        launchDials()
    }

    // MARK: Dialing

    /// Starts dials while clients wait and the pool has room.
    func launchDials() {
        // A full pool is the usual case under load (every wait calls this): decide it before anything else.
        guard dialing + all.count < proxy.config.poolSize else { return }
        let wanted = max(waiters.count, welcomeWaiters.isEmpty ? 0 : 1, proxy.config.minPoolSize - all.count)
        guard wanted > 0, !proxy.draining, !paused else { return }
        guard proxy.loop.turnTime >= nextDialAllowed else { return }
        while dialing < wanted, dialing + all.count < proxy.config.poolSize {
            dialing += 1
            proxy.dial(for: self)
        }
    }

    /// A dial succeeded; the connection is on the proxy loop with its channel set up.
    func dialSucceeded(_ server: ServerConnection, route: String, tried: [String]) {
        dialing -= 1
        stats.totalServerConnections &+= 1
        lastDialError = nil
        if stats.route != route {
            logger.info("route in use", metadata: ["route": "\(route)", "address": "\(server.address)"])
        }
        stats.route = route
        stats.serverAddress = server.address
        stats.addressesTried = tried
        all[server.id] = server
        if template == nil {
            template = server.initialParameters
        }
        let welcome = welcomeWaiters
        welcomeWaiters = []
        for c in welcome { c.welcomeReady() }
        completeProbes(Readiness(ready: true))
        checkIn(server)
    }

    /// A dial failed: clients waiting for this pool get the error when no connection can serve them.
    func dialFailed(_ message: String, sqlstate: String) {
        dialing -= 1
        stats.serverConnectFailures &+= 1
        lastDialError = (message, sqlstate)
        nextDialAllowed = .now() + .seconds(1)
        if paused { notifyIfQuiet() }
        logger.warning("server connection failed", metadata: ["error": "\(message)"])
        completeProbes(Readiness(ready: false, reason: message))
        guard all.isEmpty else { return }
        let error = ErrorFields.fatal(sqlstate, message)
        let welcome = welcomeWaiters
        welcomeWaiters = []
        for c in welcome { c.fail(error, reason: "server unavailable") }
        while let c = waiters.popFirst() { c.fail(error, reason: "server unavailable") }
    }

    /// A dial for `/readyz` even when no client waits (the pool may be empty after an outage).
    func launchProbeDial() {
        if paused {
            completeProbes(Readiness(ready: false, reason: "paused by the admin console"))
            return
        }
        guard dialing + all.count < proxy.config.poolSize, !proxy.draining else {
            completeProbes(Readiness(ready: false, reason: proxy.draining ? "draining" : "pool full and busy"))
            return
        }
        dialing += 1
        proxy.dial(for: self)
    }

    func completeProbes(_ r: Readiness) {
        let p = probes
        probes = []
        for x in p { x.complete(r) }
    }

    // MARK: Relay, server → client

    /// Bytes from a server connection: route each message through its tracker to the attached client.
    func serverBytes(_ server: ServerConnection, _ buffer: ByteBuffer) {
        server.framer.append(buffer)
        while true {
            forwardRuns(server)
            if server.state == .closed { return }
            let frame: MessageFramer.Frame?
            do {
                frame = try server.framer.next()
            } catch {
                serverLost(server, reason: "invalid message from server: \(error)")
                return
            }
            guard let frame else { return }
            switch frame {
            case .piece(_, let bytes, _):
                if !server.tracker.isSwallowing, let client = server.client { client.sendToClient(bytes) }
            case .message(let type, let bytes):
                serverMessage(server, type: type, frame: bytes)
                if server.state == .closed { return }
            }
        }
    }

    /// The fast path of `serverBytes`: consecutive whole messages that go to the attached client unchanged leave
    /// as one slice (one copy) instead of one slice and copy each. Stops before anything that needs a closer look
    /// (ParameterStatus, ErrorResponse, messages to drop, fake responses waiting, streamed rows), which the
    /// message-at-a-time path then handles; a ReadyForQuery ends the run and is handled here as that path would.
    private func forwardRuns(_ server: ServerConnection) {
        // The client through Unmanaged: no retain and release per read. A client lives until its close task runs on
        // a later turn, whatever happens here.
        while let client = server.unretainedClient, client._withUnsafeGuaranteedRef({ forwardRun(server, to: $0) }) {}
    }

    /// One run of `forwardRuns`; true when another may follow (a ReadyForQuery or a dropped message ended this one).
    private func forwardRun(_ server: ServerConnection, to client: ClientSession) -> Bool {
        // What ends the run: a ReadyForQuery (taken or dropped) or a message to drop, both after tracker.receive.
        var ready: Bool? = nil
        var drop = 0
        var described = false
        var deallocateTag = false
        let run = server.framer.scanMessages { type, raw in
            if server.tracker.hasFakes || server.tracker.isSwallowing { return .stop }
            switch type {
            case BackendType.parameterStatus, BackendType.errorResponse:
                return .stop
            case BackendType.dataRow:
                // Rows complete no request, and nothing is being swallowed (checked above): the tracker has no say.
                return .take
            case BackendType.readyForQuery:
                let forward = server.tracker.receive(type, readyStatus: raw[5]) == .forward
                ready = forward
                if forward { return .takeAndStop }
                drop = raw.count
                return .stop
            default:
                let decision = server.tracker.receive(type)
                if decision == .forward { return .take }
                if decision == .dropDescription {
                    server.tracker.described(shape: ResponseTracker.shape(ofRowDescription: raw))
                    described = true
                }
                deallocateTag = decision == .replaceWithDeallocate
                // Dropped (a response to a request pool64 injected): what came before goes, this one does not.
                drop = raw.count
                return .stop
            }
        }
        if run > 0 {
            if ready != nil && run <= Self.deferredResponseLimit {
                // A response's end waits in the client's buffer for the end of the turn (`flushAtEndOfTurn`): one
                // copy of a few hundred bytes instead of a wake-up of the client's thread mid-turn.
                client.sendToClient(server.framer.take(run))
            } else {
                client.sendRun(from: &server.framer, run)
            }
        }
        if drop > 0 { _ = server.framer.take(drop) }
        if deallocateTag { client.sendToClient(Self.deallocateComplete) }
        if described { shapeDescribed(server) }
        if let forwarded = ready {
            if server.tracker.hasStatementEvents { settleStatements(server) }
            client.emitFakes(from: server)
            client.readyForQuery(server, forwarded: forwarded)
            return true
        }
        return drop > 0
    }

    /// The largest final run of a response that is copied to wait for the end of the turn; a bigger one (the tail of
    /// a large result) goes to the socket at once, from the read buffer.
    static let deferredResponseLimit = 16 * 1024

    private func serverMessage(_ server: ServerConnection, type: UInt8, frame: ByteBuffer) {
        var frame = frame
        var status: UInt8 = 0
        switch type {
        case BackendType.readyForQuery:
            status = frame.getInteger(at: frame.readerIndex + 5, as: UInt8.self) ?? 0
        case BackendType.parameterStatus:
            if let (name, value) = BackendMessageReader.parameterStatus(frame.getSlice(at: frame.readerIndex + 5, length: frame.readableBytes - 5)!) {
                server.parameters[name] = value
                if let client = server.client {
                    // During pool64's own SETs, adopt the server's spelling of a value the client asked for
                    // (`ISO` → `ISO, MDY`) so the next lease does not SET it again.
                    let swallowing = server.tracker.isSwallowing
                    let seen = client.parameters[name]
                    if !swallowing || seen != nil { client.parameterChanged(name, value) }
                    // A swallowed SET that changes what the client last saw (its startup value coming back after
                    // RESET ALL) is news to the client, as PostgreSQL would report it.
                    if swallowing, let seen, seen != value { client.sendToClient(frame) }
                }
            }
        case BackendType.errorResponse:
            let body = frame.getSlice(at: frame.readerIndex + 5, length: frame.readableBytes - 5)!
            var code = BackendMessageReader.sqlstate(ofErrorBody: body) ?? "XX000"
            if code == "0A000", !server.prepared.isEmpty, Self.isStalePlanError(body) { planInvalidated() }
            if server.tracker.headIsStaleBind {
                // Counted as what the client gets, not the 26000 the server gave for the nonexistent statement.
                frame = Self.stalePlanError
                code = "0A000"
            }
            stats.errorsBySqlstateClass[String(code.prefix(2)), default: 0] &+= 1
            if code == "42P05", !server.duplicateParses.isEmpty {
                frame = Self.namingClientStatements(frame, server.duplicateParses)
                server.duplicateParses.removeAll()
            }
            // A failed Parse leaves no unnamed statement to keep the server for.
            server.client?.unnamedUnbound = false
            if server.tracker.isSwallowing {
                logger.warning(
                    "pool64's own query failed on server", metadata: ["server": "\(server.id)", "sqlstate": "\(code)"])
            }
        default:
            break
        }
        let decision = server.tracker.receive(type, readyStatus: status)
        if decision == .dropDescription {
            server.tracker.described(shape: frame.withUnsafeReadableBytes { ResponseTracker.shape(ofRowDescription: $0) })
        }
        if server.tracker.hasStatementEvents { settleStatements(server) }
        guard let client = server.client else {
            if type == BackendType.readyForQuery && server.state == .resetting && server.tracker.isIdle {
                server.parameters = server.initialParameters
                server.forgetPrepared()
                checkIn(server)
            }
            return
        }
        if decision == .forward { client.sendToClient(frame) }
        if decision == .replaceWithDeallocate { client.sendToClient(Self.deallocateComplete) }
        client.emitFakes(from: server)
        if client.holdingForShape && server.tracker.shapeChecks == 0 { client.shapeArrived(server) }
        if type == BackendType.readyForQuery {
            client.readyForQuery(server, forwarded: decision == .forward)
        }
    }
}

extension Pool {
    var allServers: [ServerConnection] { Array(all.values) }

    /// Once a second: close idle connections past their idle timeout or lifetime, time out waiting clients, keep
    /// the minimum pool size.
    func maintain(now: NIODeadline) {
        let config = proxy.config
        let idleLimit = TimeAmount.nanoseconds(Int64(config.serverIdleTimeout * 1e9))
        let lifetime = TimeAmount.nanoseconds(Int64(config.serverLifetime * 1e9))
        for s in idle where s.state == .idle {
            if config.serverLifetime > 0 && now - s.createdAt > lifetime {
                closeServer(s, reason: "server lifetime reached")
            } else if config.serverIdleTimeout > 0 && now - s.lastUsed > idleLimit && all.count > config.minPoolSize {
                closeServer(s, reason: "server idle timeout")
            }
        }
        if !waiters.isEmpty || proxy.draining { releaseUnboundHolders(now: now) }
        if config.queryWaitTimeout > 0 {
            let limit = TimeAmount.nanoseconds(Int64(config.queryWaitTimeout * 1e9))
            while let c = waiters.first, let started = c.waitStarted, now - started > limit {
                waiters.remove(c)
                c.waiting = false
                c.fail(
                    ErrorFields.fatal(
                        "08P01", "query_wait_timeout: no server connection became free in time",
                        detail: "pool size \(config.poolSize), \(waiters.count) clients still waiting"),
                    reason: "query wait timeout")
            }
        }
        launchDials()
    }

    /// Clients kept attached between transactions for an unbound unnamed statement (`ClientSession.unnamedUnbound`)
    /// that have sent nothing for a second while others wait, or while draining, give their server back; their
    /// unnamed statement goes with it, as it would have without the hold.
    private func releaseUnboundHolders(now: NIODeadline) {
        for server in all.values where server.state == .active {
            guard let client = server.client, client.unnamedUnbound, server.tracker.isIdle,
                proxy.draining || now - client.lastActivity > .seconds(1)
            else { continue }
            client.releaseUnboundHold(server)
        }
    }

    /// After a reload: close idle connections beyond a smaller pool size (busy ones close as they come back), and
    /// dial for waiting clients when the pool grew.
    func resized() {
        while all.count > proxy.config.poolSize, let s = idle.popLast() {
            closeServer(s, reason: "pool size reduced")
        }
        launchDials()
    }

    /// Draining: idle connections close now; busy ones close when released.
    func drainIdle() {
        for s in idle { closeServer(s, reason: "draining") }
    }

    /// SHOW POOLS / SHOW STATS view of this pool.
    func snapshot(now: NIODeadline) -> PoolSnapshot {
        var s = stats
        var active = 0
        var idleCount = 0
        var used = 0
        for server in all.values {
            switch server.state {
            case .active: active += 1
            case .idle: idleCount += 1
            case .resetting: used += 1
            case .closed: break
            }
        }
        s.svActive = active
        s.svIdle = idleCount
        s.svUsed = used
        s.svLogin = dialing
        s.clWaiting = waiters.count
        s.clActive = active
        s.clIdle = max(0, clients - active - waiters.count)
        s.poolSize = proxy.config.poolSize
        s.pinnedClients = pinnedClients
        if let c = waiters.first, let started = c.waitStarted {
            s.maxwaitUs = UInt64((now - started).nanoseconds / 1000)
        } else {
            s.maxwaitUs = 0
        }
        s.xactLatency = xactHistogram.snapshot
        s.waitLatency = waitHistogram.snapshot
        return s
    }
}
