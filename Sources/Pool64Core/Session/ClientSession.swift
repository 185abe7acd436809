import Logging
import NIOCore
import NIOSSL
import Pool64Wire

/// A statement a client prepared with a named Parse, and the name it has on server connections.
struct ClientStatement {
    let serverName: String
    let query: String
    let parameterTypes: [UInt32]
}

/// One client connection: startup, authentication, then relay through leased server connections.
/// Lives on the proxy event loop; `ClientSession+Relay.swift` holds the message relay.
/// `@unchecked Sendable`: confined to the proxy event loop.
final class ClientSession: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Where the client is in its life.
    enum Phase {
        /// Waiting for StartupMessage (SSLRequest / GSSENCRequest may come first).
        case startup
        /// SCRAM-SHA-256 exchange in progress.
        case scram(SCRAMServerExchange, UserCredential?)
        /// Waiting for the md5 password response.
        case md5(salt: [UInt8], UserCredential?)
        /// Authenticated; waiting for the pool to know the server's parameters.
        case welcome
        /// Relaying.
        case ready
        case closed
    }

    unowned let proxy: ProxyCore
    let id: Int
    var context: ChannelHandlerContext!
    var logger: Logger
    var phase: Phase = .startup
    var startupBuffer: ByteBuffer?
    var framer: MessageFramer
    var user = ""
    var database = ""
    /// Parameters this client asked for (startup parameters, `options -c`, later SETs of reported parameters).
    var parameters: [String: String] = [:] {
        didSet { parametersKeyCache = nil }
    }
    private var parametersKeyCache: String?
    /// A canonical text of `parameters`; server connections remember the key they were last synchronised to, so
    /// clients with identical parameters (the common case) skip the comparison on every lease.
    var parametersKey: String {
        if let k = parametersKeyCache { return k }
        let k = parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{0}")
        parametersKeyCache = k
        return k
    }
    var pool: Pool?
    var server: ServerConnection?
    var waiting = false
    var waitStarted: NIODeadline?
    var transactionStarted: NIODeadline?
    var queued = CircularBuffer<MessageFramer.Frame>()
    var out: ByteBuffer
    let allocator: ByteBufferAllocator
    var statements: [String: ClientStatement] = [:]
    var pinned = false
    var processID: Int32 = 0
    var secretKey: Int32 = 0
    var loginTimer: Scheduled<Void>?
    var lastActivity = NIODeadline.now()
    var closeReason: String?
    /// Counted in `pool.clients` (authenticated and welcomed).
    var countedInPool = false

    init(proxy: ProxyCore, id: Int, peer: String, allocator: ByteBufferAllocator) {
        self.proxy = proxy
        self.id = id
        var l = proxy.logger
        l[metadataKey: "client"] = .string("\(id)")
        l[metadataKey: "peer"] = .string(peer)
        logger = l
        framer = MessageFramer(
            maximumMessageSize: proxy.config.maxMessageSize, streamableTypes: (FrontendType.copyData, FrontendType.copyData))
        self.allocator = allocator
        out = allocator.buffer(capacity: 512)
    }

    var transactionMode: Bool { proxy.config.poolMode == .transaction }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    // The context holds this handler; dropping it here breaks the cycle so closed sessions are freed.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.debug("client connected")
        let timeout = proxy.config.clientLoginTimeout
        if timeout > 0 {
            loginTimer = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) { [self] in
                switch phase {
                case .startup, .scram, .md5, .welcome:
                    fail(ErrorFields.fatal("08P01", "client_login_timeout: startup and authentication took too long"),
                         reason: "login timeout")
                case .ready, .closed: break
                }
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        lastActivity = .now()
        switch phase {
        case .startup:
            if startupBuffer == nil { startupBuffer = buffer } else {
                var b = buffer
                startupBuffer!.writeBuffer(&b)
            }
            readStartup()
        case .scram, .md5, .welcome, .ready:
            framer.append(buffer)
            readFrames()
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        server?.flush()
        flushToClient()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Backpressure: stop reading the server while this client cannot take more.
        server?.setReading(context.channel.isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cleanup(reason: closeReason ?? "client disconnected")
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("client connection error", metadata: ["error": "\(error)"])
        closeReason = closeReason ?? "client connection error"
        context.close(promise: nil)
    }

    // MARK: Output

    func sendToClient(_ frame: ByteBuffer) {
        var f = frame
        pool?.stats.totalSent &+= UInt64(f.readableBytes)
        if f.readableBytes >= 32 * 1024 {
            flushToClient(flush: false)
            context?.write(NIOAny(f), promise: nil)
        } else {
            out.writeBuffer(&f)
        }
    }

    func flushToClient(flush: Bool = true) {
        guard out.readableBytes > 0 else {
            if flush { context?.flush() }
            return
        }
        context?.write(NIOAny(out), promise: nil)
        if flush {
            context?.flush()
            // Usually written synchronously by now, so `out` is uniquely referenced again and clearing it reuses
            // its storage instead of allocating a buffer per flush.
            out.clear()
        } else {
            out = allocator.buffer(capacity: 512)
        }
    }

    func emitFakes(from server: ServerConnection) {
        server.tracker.emitReadyFakes(out: &out)
    }

    /// Sends an error (FATAL closes the connection) and closes.
    func fail(_ error: ErrorFields, reason: String) {
        guard case .closed = phase else {
            logger.debug("closing client", metadata: ["reason": "\(reason)", "sqlstate": "\(error.sqlstate)"])
            closeReason = reason
            out.writeErrorResponse(error)
            flushToClient()
            context?.close(promise: nil)
            phase = .closed
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
        loginTimer?.cancel()
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
        logger.debug("client closed", metadata: ["reason": "\(reason)"])
    }
}
