import Logging
import NIOCore
import Pool64Wire

/// One authenticated server connection: libpq's handle (kept for TLS state, cancel and teardown) plus the transport
/// on the duplicated socket that the relay reads and writes (a `SocketConnection` on the relay loop, or a bridged
/// TLS channel). Confined to the relay loop.
/// `@unchecked Sendable`: confined to the relay loop.
final class ServerConnection: TransportDelegate, @unchecked Sendable {
    /// Lifecycle of a pooled connection; the pool's lists mirror it.
    enum State {
        /// In the pool's idle list.
        case idle
        /// Leased to a client.
        case active
        /// Running `DISCARD ALL` (or parameter resets) before going back to the pool.
        case resetting
        case closed
    }

    let id: Int
    // unowned(unsafe): pools are never removed, so they outlive their connections (see ClientSession.proxy).
    unowned(unsafe) let pool: Pool
    let pq: LibPQConnection
    let cancelHandle: CancelHandle?
    let address: String
    let createdAt: NIODeadline
    var lastUsed: NIODeadline
    var transport: Transport? {
        didSet { socket = (transport as? SocketConnection).map { Unmanaged.passUnretained($0) } }
    }
    /// `transport` when it is a plain socket, unretained, for the relay's direct writes (`MessageFramer.sendNow`):
    /// a reference read from a stored property is retained and released around each use. The socket lives while
    /// it is `transport` (and until the end of the loop's batch after it is closed).
    private(set) var socket: Unmanaged<SocketConnection>?
    var state: State = .idle
    /// RECONNECT marked it: it closes when released instead of going back to the pool.
    var closeNeeded = false
    var client: ClientSession?
    /// `client` without a retain (the relay's fast path; a client lives until its close task runs on a later turn).
    var unretainedClient: Unmanaged<ClientSession>? {
        guard let c = client else { return nil }
        return Unmanaged.passUnretained(c)
    }
    var tracker = ResponseTracker()
    var framer: MessageFramer
    /// Parameter values as the server last reported them, and the values startup gave it.
    var parameters: [String: String] {
        didSet { syncedParametersKey = nil }
    }
    /// `ClientSession.parametersKey` this connection's parameters were last made to match.
    var syncedParametersKey: Int?
    let initialParameters: [String: String]
    /// Server-side names of prepared statements this connection holds, with a use tick for LRU eviction.
    var prepared: [String: UInt64] = [:]
    var preparedTick: UInt64 = 0
    /// Result shapes of statements in `prepared` whose Describe came back (`Expectation.describeShape`), compared
    /// with the shape each client was given (`ClientStatement.shape`).
    var shapes: [String: Int] = [:]
    /// Client names of statements parsed a second time here (`ClientSession.duplicateParse`), by server name: the
    /// server's 42P05 names the pool statement, and the client is told its own name instead.
    var duplicateParses: [String: String] = [:]
    /// Pending bytes to the server, written at the end of the current read batch.
    var outbound: ByteBuffer
    /// Whether the channel's autoRead is on (see `setReading`).
    var reading = true

    init(id: Int, pool: Pool, pq: LibPQConnection, address: String, now: NIODeadline, allocator: ByteBufferAllocator) {
        self.id = id
        self.pool = pool
        self.pq = pq
        self.address = address
        cancelHandle = pq.makeCancelHandle()
        createdAt = now
        lastUsed = now
        var params: [String: String] = [:]
        for name in ServerConnection.reportedParameters {
            if let v = pq.parameterStatus(name) { params[name] = v }
        }
        parameters = params
        initialParameters = params
        framer = MessageFramer(
            maximumMessageSize: Int(Int32.max), streamableTypes: (BackendType.dataRow, BackendType.copyData))
        outbound = allocator.buffer(capacity: 256)
    }

    /// Parameters PostgreSQL 15 reports with ParameterStatus (GUC_REPORT), which clients see at startup.
    static let reportedParameters = [
        "application_name", "client_encoding", "DateStyle", "default_transaction_read_only", "in_hot_standby",
        "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding", "server_version",
        "session_authorization", "standard_conforming_strings", "TimeZone",
    ]

    /// Queues bytes to the server.
    func write(_ buffer: inout ByteBuffer) {
        outbound.writeBuffer(&buffer)
    }

    /// Backpressure toward the server: reading pauses while the attached client cannot take more.
    func setReading(_ on: Bool) {
        guard on != reading else { return }
        reading = on
        transport?.setReading(on)
    }

    /// Sends `n` bytes of whole messages from a client's framer: straight from the read buffer when nothing is
    /// queued (no slice, no copy into `outbound`), else queued after what is.
    func sendRun(from framer: inout MessageFramer, _ n: Int) {
        let left = framer.sendNow(n, to: outbound.readableBytes == 0 ? socket : nil)
        if left > 0 { queue(framer.take(left)) }
    }

    /// Queues a message or run after what is queued: large ones as the slice itself, small ones copied into
    /// `outbound` (so a batch leaves in one write).
    func queue(_ frame: ByteBuffer) {
        var f = frame
        if f.readableBytes >= 32 * 1024 {
            writeSlice(f)
        } else {
            write(&f)
        }
    }

    /// Writes a large frame or piece without copying it into `outbound`, after anything queued before it.
    func writeSlice(_ bytes: ByteBuffer) {
        flush()
        transport?.send(bytes)
    }

    /// Sends queued bytes.
    func flush() {
        guard outbound.readableBytes > 0 else { return }
        transport?.send(outbound)
        // Reuses the storage when the socket took everything (the usual case); otherwise the transport keeps
        // the rest and this allocates afresh.
        outbound.clear()
    }

    /// Server-side prepared statement bookkeeping: true when `name` is already prepared here.
    func hasPrepared(_ name: String) -> Bool {
        guard prepared[name] != nil else { return false }
        preparedTick &+= 1
        prepared[name] = preparedTick
        return true
    }

    /// Records `name` as prepared; returns the least recently used name to close when over `limit`.
    func addPrepared(_ name: String, limit: Int) -> String? {
        preparedTick &+= 1
        prepared[name] = preparedTick
        // Prepared afresh: its shape is what the Describe behind this Parse will say.
        shapes[name] = nil
        guard prepared.count > limit else { return nil }
        var victim: (String, UInt64)? = nil
        for (k, v) in prepared where k != name {
            if victim == nil || v < victim!.1 { victim = (k, v) }
        }
        if let victim {
            prepared.removeValue(forKey: victim.0)
            shapes[victim.0] = nil
        }
        return victim?.0
    }

    /// Forgets every prepared statement (DISCARD ALL, DEALLOCATE ALL, a reset).
    func forgetPrepared() {
        prepared.removeAll()
        shapes.removeAll()
    }

    /// Closes the transport and libpq's connection.
    func close() {
        guard state != .closed else { return }
        state = .closed
        let pq = self.pq
        if let t = transport as? ChannelTransport, let done = t.closeFuture {
            // libpq's session may still be on the TLS handler's memory BIOs until the channel is fully closed;
            // PQfinish only after that (it then sends Terminate over libpq's own descriptor).
            t.close()
            done.whenComplete { _ in pq.finish() }
        } else {
            transport?.close()
            pq.finish()
        }
    }

    // MARK: TransportDelegate

    // The pool and the client through Unmanaged: a plain call retains and releases each around it (pools live
    // forever; a leased client is held by its own socket until its close task runs on a later turn).
    override func received(_ buffer: ByteBuffer) {
        Unmanaged.passUnretained(pool)._withUnsafeGuaranteedRef { $0.serverBytes(self, buffer) }
        framer.releaseReadBuffer(to: pool.proxy.loop)
    }

    override func readComplete() {
        flush()
        if client != nil { Unmanaged.passUnretained(client!)._withUnsafeGuaranteedRef { $0.flushAtEndOfTurn() } }
    }

    override func writabilityChanged(_ writable: Bool) {}

    override func transportClosed(_ error: String?) {
        transport = nil
        pool.serverLost(self, reason: error.map { "server connection error: \($0)" } ?? "server closed the connection")
    }
}
