import Logging
import NIOCore
import NIOSSL
import Pool64Wire

/// A statement a client prepared with a named Parse, and the name it has on server connections.
struct ClientStatement {
    let serverName: String
    let query: String
    let parameterTypes: [UInt32]
    /// The result shape the client was given (`ResponseTracker.shape(ofRowDescription:)`), nil until known. Fixed
    /// from then on, as PostgreSQL fixes a prepared statement's: a server whose copy has another shape answers its
    /// Bind and Describe with 0A000 (`ClientSession.extended`).
    var shape: Int?
}

/// One client connection: startup, authentication, then relay through leased server connections.
/// Lives on the proxy event loop; `ClientSession+Relay.swift` holds the message relay.
/// A client's SCRAM exchange while it runs, boxed so each step mutates it in place (an enum payload would be
/// copied out and re-boxed per message).
final class SCRAMLogin {
    var exchange: SCRAMServerExchange
    init(_ exchange: SCRAMServerExchange) { self.exchange = exchange }
}

/// `@unchecked Sendable`: confined to the proxy event loop.
final class ClientSession: TransportDelegate, WaitQueueNode, @unchecked Sendable {
    /// Where the client is in its life.
    enum Phase {
        /// Waiting for StartupMessage (SSLRequest / GSSENCRequest may come first).
        case startup
        /// SCRAM-SHA-256 exchange in progress. (A box: on the heap only while it runs, not inline in every idle
        /// session, and advanced in place.)
        case scram(SCRAMLogin)
        /// Waiting for the md5 password response.
        indirect case md5(salt: [UInt8], UserCredential?)
        /// Authenticated; waiting for the pool to know the server's parameters.
        case welcome
        /// Relaying.
        case ready
        /// A client of the virtual admin database (`pgbouncer`): its simple queries go to `ProxyCore.console`
        /// (`ClientSession+Console.swift`, state in `consoleState`).
        case console
        case closed
    }

    // unowned(unsafe): the proxy outlives every session, and a checked unowned reference costs a retain and a
    // release on every access (callgrind: 4% of the relay's instructions).
    unowned(unsafe) let proxy: ProxyCore
    let id: Int
    /// The client's socket (or TLS channel); nil once closed.
    var transport: Transport? {
        didSet { socket = (transport as? SocketConnection).map { Unmanaged.passUnretained($0) } }
    }
    /// `transport` when it is a plain socket, unretained, for the relay's direct writes (`MessageFramer.sendNow`):
    /// a reference read from a stored property is retained and released around each use. The socket lives while
    /// it is `transport` (and until the end of the loop's batch after it is closed).
    private(set) var socket: Unmanaged<SocketConnection>?
    /// Formatted when something is logged, not per accept.
    let peerAddress: PeerAddress
    var peer: String { peerAddress.description }
    var phase: Phase = .startup
    var startupBuffer: ByteBuffer?
    var framer: MessageFramer
    var user = ""
    var database = ""
    /// Parameters this client asked for (startup parameters, `options -c`, later SETs of reported parameters).
    var parameters: [String: String] = [:] {
        didSet { parametersKeyCache = 0 }
    }
    private var parametersKeyCache = 0
    /// What the client's startup packet asked for: `RESET ALL` and `DISCARD ALL` return the session to these, as
    /// PostgreSQL does (startup values are session defaults), not to the pool connection's own.
    var startupParameters: [String: String] = [:]
    /// A RESET or DISCARD ALL went to the server: re-apply `parameters` after the client's next Query or Sync.
    var parametersReset = false
    /// A number for `parameters` (equal parameters, equal number; never 0); server connections remember the key
    /// they were last synchronised to, so clients with identical parameters (the common case) skip the comparison
    /// on every lease with one integer compare.
    var parametersKey: Int {
        if parametersKeyCache != 0 { return parametersKeyCache }
        parametersKeyCache = proxy.parameterSets.number(for: parameters)
        return parametersKeyCache
    }
    /// The client's pool once authenticated, unretained: pools are never removed, so they outlive their clients.
    /// Not `unowned(unsafe)` either: the compiler still retains and releases a reference read from a stored property
    /// around each use (several per transaction); the relay's hot paths call it through `_withUnsafeGuaranteedRef`.
    private(set) var poolRef: Unmanaged<Pool>?
    var pool: Pool? {
        get { poolRef?.takeUnretainedValue() }
        set { poolRef = newValue.map { Unmanaged.passUnretained($0) } }
    }

    /// Adds to the pool's count of bytes sent to clients (without a retain; see `poolRef`).
    @inline(__always)
    func countSent(_ n: Int) {
        poolRef?._withUnsafeGuaranteedRef { $0.stats.totalSent &+= UInt64(n) }
    }
    var server: ServerConnection?
    var waiting = false
    /// Links for the pool's queue of clients waiting for a server connection.
    var waitLinks = WaitLinks<ClientSession>()
    var waitStarted: NIODeadline?
    var transactionStarted: NIODeadline?
    /// The message that made this client ask for a server connection; what follows it waits in the framer.
    var pendingFrame: MessageFramer.Frame?
    /// True while the client's input waits (in the framer) for the attached server to describe a statement's
    /// result shape: a copy prepared on demand (`heldForShape` is then the Bind or Describe that needs it, run or
    /// answered 0A000 once the shape is known), or a Parse of SQL the server already holds, parsed afresh
    /// (`ClientSession.checkParse`).
    var holdingForShape = false
    var heldForShape: MessageFramer.Frame?
    /// True inside `readFrames` (so `attached` does not re-enter it).
    var readingFrames = false
    /// Output to the client; between transactions the loop's empty buffer (idle clients hold no storage).
    var out: ByteBuffer
    var allocator: ByteBufferAllocator { proxy.loop.allocator }
    var statements: [String: ClientStatement] = [:]
    var pinned = false
    /// Set while `phase` is `.console`.
    var consoleState: ConsoleClientState?
    /// Transaction mode: the unnamed statement was parsed in this lease and not bound yet. A Sync does not end the
    /// lease then: pg8000 sends Parse+Sync, Describe+Sync, Bind+Execute+Sync, and the unnamed statement lives only
    /// on the server that parsed it (`Pool.maintain` lets go of a client that stops there while others wait).
    var unnamedUnbound = false
    var processID: Int32 = 0
    var secretKey: Int32 = 0
    var lastActivity: NIODeadline
    let connectedAt: NIODeadline
    var closeReason: String?
    /// Counted in `pool.clients` (authenticated and welcomed).
    var countedInPool = false

    init(proxy: ProxyCore, id: Int, peer: PeerAddress) {
        self.proxy = proxy
        self.id = id
        self.peerAddress = peer
        out = proxy.loop.emptyBuffer
        connectedAt = proxy.loop.turnTime
        lastActivity = connectedAt
        framer = MessageFramer(
            maximumMessageSize: proxy.config.maxMessageSize, streamableTypes: (FrontendType.copyData, FrontendType.copyData))
    }

    /// The proxy's logger with this client's id and peer. Built when something is logged, not kept per client:
    /// a Logger with metadata is a dictionary per idle connection.
    var logger: Logger {
        var l = proxy.logger
        // Sessions log at info and debug only; below that level skip building metadata (connection churn).
        guard l.logLevel <= .info else { return l }
        l[metadataKey: "client"] = .string("\(id)")
        l[metadataKey: "peer"] = .string(peer)
        if !user.isEmpty { l[metadataKey: "user"] = .string(user) }
        if !database.isEmpty { l[metadataKey: "db"] = .string(database) }
        return l
    }

    var transactionMode: Bool { proxy.config.poolMode == .transaction }

    // MARK: Transport events

    /// The socket is open; the login clock starts (checked by the proxy's once-a-second tick).
    func connected() {
        if proxy.logsDebug { logger.debug("client connected") }
        proxy.loggingIn[id] = self
    }

    /// Called by the tick while the client has not finished logging in.
    func loginTimedOut() {
        switch phase {
        case .startup, .scram, .md5, .welcome:
            fail(ErrorFields.fatal("08P01", "client_login_timeout: startup and authentication took too long"),
                 reason: "login timeout")
        case .ready, .console, .closed: break
        }
    }

    override func received(_ buffer: ByteBuffer) {
        lastActivity = proxy.loop.turnTime
        switch phase {
        case .startup:
            borrowOutput()
            if startupBuffer == nil { startupBuffer = buffer } else {
                var b = buffer
                startupBuffer!.writeBuffer(&b)
            }
            readStartup()
        case .scram, .md5, .welcome, .console:
            borrowOutput()
            framer.append(buffer)
            readFrames()
            framer.releaseReadBuffer(to: proxy.loop)
        case .ready:
            framer.append(buffer)
            readFrames()
            // Bytes left in the framer (a client waiting for a server) would keep the loop's 64 KiB read buffer and
            // make the next read allocate another: they move to a spare buffer, which comes back in `attached`.
            framer.releaseReadBuffer(to: proxy.loop)
        case .closed:
            break
        }
    }

    /// Borrows a spare output buffer from the loop unless one is held (flushToClient gives it back between
    /// transactions): logins answer every message, and a transaction writes to it only for fakes and leftovers
    /// (`sendToClient`), so neither allocates one.
    func borrowOutput() {
        if out.capacity == 0 { out = proxy.loop.takeBuffer() }
    }

    override func readComplete() {
        // Unmanaged: no retain and release per read (the pool holds every server it has not closed, and closing
        // runs on a later turn).
        if server != nil { Unmanaged.passUnretained(server!)._withUnsafeGuaranteedRef { $0.flush() } }
        flushToClient()
    }

    override func writabilityChanged(_ writable: Bool) {
        // Backpressure: stop reading the server while this client cannot take more.
        server?.setReading(writable)
    }

    override func transportClosed(_ error: String?) {
        transport = nil
        if let error, closeReason == nil {
            logger.debug("client connection error", metadata: ["error": "\(error)"])
            closeReason = "client connection error"
        }
        cleanup(reason: closeReason ?? "client disconnected")
    }

    // MARK: Output

    func sendToClient(_ frame: ByteBuffer) {
        var f = frame
        countSent(f.readableBytes)
        if f.readableBytes >= 32 * 1024 {
            flushToClient()
            transport?.send(f)
        } else {
            borrowOutput()
            out.writeBuffer(&f)
        }
    }

    /// Sends `n` bytes of whole messages from a server's framer: straight from the read buffer when nothing is
    /// queued for this client (no slice, no copy into `out`), else after what is.
    func sendRun(from framer: inout MessageFramer, _ n: Int) {
        let left = framer.sendNow(n, to: out.readableBytes == 0 ? socket : nil)
        countSent(n - left)
        if left > 0 { sendToClient(framer.take(left)) }
    }

    /// Sends what `out` holds at the end of the relay loop's turn (`RelayLoop.flushAtEndOfTurn`); with nothing held
    /// it only gives the buffer back now, as `flushToClient` does.
    func flushAtEndOfTurn() {
        guard out.readableBytes > 0 else {
            flushToClient()
            return
        }
        proxy.loop.flushAtEndOfTurn(self)
    }

    override func flushDeferred() {
        flushToClient()
    }

    /// Sends what `out` holds.
    func flushToClient() {
        guard out.readableBytes > 0 else {
            // Nothing to send (runs went out directly); a client between transactions still gives the buffer back.
            if server == nil && out.capacity > 0 { proxy.loop.recycle(&out) }
            return
        }
        let kept = transport?.send(out) ?? false
        // The socket usually took everything, so `out` is uniquely referenced again and clearing it reuses its
        // storage while a transaction runs. Between transactions the client gives it back to the loop (idle
        // clients are the many) and holds the shared empty buffer, which costs nothing.
        if server == nil || out.capacity > 16 * 1024 {
            if kept { out = proxy.loop.emptyBuffer } else { proxy.loop.recycle(&out) }
        } else {
            out.clear()
        }
    }

    func emitFakes(from server: ServerConnection) {
        server.tracker.emitReadyFakes(out: &out)
    }

    /// Sends an error (FATAL closes the connection) and closes.
    func fail(_ error: ErrorFields, reason: String) {
        guard case .closed = phase else {
            if proxy.logsDebug {
                logger.debug("closing client", metadata: ["reason": "\(reason)", "sqlstate": "\(error.sqlstate)"])
            }
            closeReason = reason
            out.writeErrorResponse(error)
            flushToClient()
            phase = .closed
            transport?.close()
            return
        }
    }

    /// The server under this client broke.
    func serverLost(_ error: ErrorFields) {
        server = nil
        fail(error, reason: "server connection lost")
    }

    private func cleanup(reason: String) {
        phase = .closed
        proxy.loggingIn[id] = nil
        proxy.unregister(self, reason: reason)
        guard let pool else { return }
        if waiting {
            pool.cancelWait(self)
            waiting = false
        } else {
            pool.welcomeWaiters.removeAll { $0 === self }
        }
        if countedInPool { pool.clients -= 1 }
        if pinned { pool.pinnedClients -= 1 }
        if let server {
            self.server = nil
            pool.release(server, needsReset: !transactionMode || pinned)
        }
        if proxy.logsDebug { logger.debug("client closed", metadata: ["reason": "\(reason)"]) }
    }
}
