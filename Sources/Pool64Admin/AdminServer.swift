import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Pool64Resolver
import Prometheus

/// The admin HTTP listener: `/healthz`, `/readyz`, `/stats` (JSON, with paged `/stats/clients` and `/stats/servers`),
/// `/metrics` (Prometheus text) and the `POST /admin/pause|resume|reconnect` commands.
///
/// Construct it with the event loop group, the provider and the registry the executable owns, then call ``run()``
/// (directly or as a swift-service-lifecycle service); it serves until its task is cancelled. Call ``bind()`` first
/// to fail fast on a port already in use and to learn the bound addresses (with port 0, the port the kernel
/// chose); ``run()`` binds by itself otherwise.
public final class AdminServer: Sendable {
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    typealias Listener = NIOAsyncChannel<Connection, Never>

    private let configuration: Configuration
    private let router: AdminRouter
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = LockedState()
    private let connections: ConnectionCounter

    /// Creates a server; nothing is bound until ``bind()`` or ``run()``.
    ///
    /// - Parameters:
    ///   - configuration: listen addresses, token and limits.
    ///   - provider: the source of snapshots, readiness and liveness (the core).
    ///   - registry: the registry the executable gave to `PrometheusMetricsFactory`; `/metrics` renders it after
    ///     writing the snapshot-derived series into it.
    ///   - eventLoopGroup: the group to run listeners and connections on; the server never creates its own.
    ///   - logger: where listener lifecycle, connection errors and maintenance commands are logged.
    public init(
        configuration: Configuration,
        provider: any AdminProvider,
        registry: PrometheusCollectorRegistry,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        self.configuration = configuration
        self.router = AdminRouter(
            provider: provider,
            exporter: PrometheusExporter(registry: registry),
            token: configuration.bearerToken.map(BearerToken.init),
            deadlines: .init(
                liveness: configuration.livenessDeadline,
                readiness: configuration.readinessDeadline,
                stats: configuration.statsDeadline,
                control: configuration.controlDeadline
            ),
            logger: logger
        )
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.connections = ConnectionCounter(limit: configuration.maxConnections)
    }

    /// The addresses bound (empty before ``bind()`` and after ``run()`` returns), in configuration order.
    public var boundAddresses: [SocketAddress] {
        self.state.withLock { $0.listeners.compactMap(\.channel.localAddress) }
    }

    /// The bound addresses rendered like listen addresses (`[::]:9090`), for `StatsSnapshot.process.adminListeners`.
    public var boundAddressDescriptions: [String] {
        self.boundAddresses.map(ListenAddress.render)
    }

    /// Binds every configured address and returns the bound socket addresses. Idempotent.
    ///
    /// A `[::]` address is bound dual-stack (`IPV6_V6ONLY=0`); if the kernel has no IPv6 it falls back to
    /// `0.0.0.0` on the same port with a warning. Throws ``AdminServerError`` naming the address on failure, after
    /// closing whatever it had bound.
    @discardableResult
    public func bind() async throws -> [SocketAddress] {
        if self.state.withLock({ $0.bound }) { return self.boundAddresses }
        var listeners: [Listener] = []
        do {
            for text in self.configuration.listen {
                listeners.append(try await self.bind(ListenAddress.admin(text), as: text))
            }
        } catch {
            for listener in listeners { try? await listener.channel.close() }
            throw error
        }
        let alreadyBound = self.state.withLock { state -> Bool in
            if state.bound { return true }
            state.bound = true
            state.listeners = listeners
            return false
        }
        if alreadyBound {
            // Another caller raced us; keep its listeners.
            for listener in listeners { try? await listener.channel.close() }
        }
        return self.boundAddresses
    }

    /// Binds if needed, then serves until the calling task is cancelled. Closes every listener and connection
    /// before returning.
    public func run() async throws {
        try await self.bind()
        let listeners = self.state.withLock { state -> [Listener] in
            guard !state.serving else { return [] }
            state.serving = true
            return state.listeners
        }
        guard !listeners.isEmpty else { return }
        defer { self.state.withLock { $0.listeners = [] } }
        for listener in listeners {
            var logger = self.logger
            logger[metadataKey: AdminLogMetadata.address] =
                "\(listener.channel.localAddress.map(ListenAddress.render) ?? "?")"
            logger.info("admin listener serving")
        }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for listener in listeners {
                    group.addTask { await self.accept(on: listener) }
                }
            }
        } onCancel: {
            // The inbound streams end on cancellation too; closing makes the listening sockets go away at once.
            for listener in listeners { listener.channel.close(promise: nil) }
        }
    }

    private func bind(_ address: ListenAddress, as text: String) async throws -> Listener {
        do {
            return try await self.bindListener(address)
        } catch {
            if Self.shouldFallBackToIPv4(address, after: error) {
                let fallback = ListenAddress(host: "0.0.0.0", port: address.port)
                self.logger.warning(
                    "no IPv6 on this host; admin listener falls back to IPv4 only",
                    metadata: [AdminLogMetadata.address: "\(text)", AdminLogMetadata.error: "\(error)"]
                )
                do {
                    return try await self.bindListener(fallback)
                } catch {
                    throw Self.bindError(error, address: "\(text) (fallback \(fallback))")
                }
            }
            throw Self.bindError(error, address: text)
        }
    }

    private func bindListener(_ address: ListenAddress) async throws -> Listener {
        let socketAddress = try address.socketAddress()
        var bootstrap = ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 128)
        if configuration.reusePort {
            // NIO names no SO_REUSEPORT option; Glibc's constant at SOL_SOCKET.
            bootstrap = bootstrap.serverChannelOption(
                ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_REUSEPORT)), value: 1)
        }
        if address.isIPv6Wildcard {
            // Dual-stack on purpose (DESIGN decision 6): never rely on net.ipv6.bindv6only. The level must be
            // IPPROTO_IPV6; ChannelOptions.socketOption(_:) would use SOL_SOCKET.
            bootstrap = bootstrap.serverChannelOption(
                ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 0)
        }
        let configuration = self.configuration
        return try await bootstrap.bind(to: socketAddress) { channel in
            channel.eventLoop.makeCompletedFuture {
                try Self.configurePipeline(channel, configuration)
                return try Connection(wrappingChannelSynchronously: channel)
            }
        }
    }

    private static func configurePipeline(_ channel: any Channel, _ configuration: Configuration) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = configuration.maxHeaderBytes
        limits.maxHeaderFieldSize = configuration.maxHeaderBytes
        limits.maxHeaderFieldCount = 100
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(IdleStateHandler(readTimeout: configuration.idleTimeout))
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: true,
            withErrorHandling: false,
            withOutboundHeaderValidation: true,
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits
        )
        try pipeline.addHandler(AdminHTTPErrorHandler())
        // After the HTTP codec, so it sees whole requests and responses: idle is judged per request.
        try pipeline.addHandler(IdleCloseHandler())
    }

    private func accept(on listener: Listener) async {
        do {
            try await listener.executeThenClose { inbound in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in inbound {
                            guard self.connections.acquire() else {
                                self.logger.debug("admin connection limit reached; closing new connection")
                                connection.channel.close(promise: nil)
                                continue
                            }
                            group.addTask {
                                await self.serve(connection)
                                self.connections.release()
                            }
                        }
                    } catch {
                        self.logger.debug("admin listener stopped", metadata: [AdminLogMetadata.error: "\(error)"])
                    }
                }
            }
        } catch {
            self.logger.debug("admin listener closed with error", metadata: [AdminLogMetadata.error: "\(error)"])
        }
    }

    private func serve(_ connection: Connection) async {
        var logger = self.logger
        let peer = connection.channel.remoteAddress.map(ListenAddress.render) ?? "?"
        logger[metadataKey: AdminLogMetadata.peer] = "\(peer)"
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await self.exchange(inbound, outbound, peer: peer)
            }
        } catch {
            // Parse errors, resets and idle timeouts end here; none needs an operator.
            logger.debug("admin connection closed", metadata: [AdminLogMetadata.error: "\(error)"])
        }
    }

    /// Reads requests and writes responses in order until the client closes, asks to close, or breaks a limit.
    private func exchange(
        _ inbound: NIOAsyncChannelInboundStream<HTTPServerRequestPart>,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        peer: String
    ) async throws {
        var head: HTTPRequestHead?
        var bodyBytes = 0
        for try await part in inbound {
            switch part {
            case .head(let requestHead):
                head = requestHead
                bodyBytes = 0
            case .body(let chunk):
                bodyBytes += chunk.readableBytes
                if bodyBytes > self.configuration.maxBodyBytes {
                    try await Self.write(
                        .payloadTooLarge, version: head?.version ?? .http1_1, keepAlive: false,
                        includeBody: head?.method != .HEAD, outbound)
                    return
                }
            case .end:
                guard let request = head else { continue }
                head = nil
                let response = await self.router.respond(
                    method: request.method.rawValue,
                    target: request.uri,
                    authorization: request.headers.first(name: "authorization"),
                    peer: peer
                )
                try await Self.write(
                    response, version: request.version, keepAlive: request.isKeepAlive,
                    includeBody: request.method != .HEAD, outbound)
                if !request.isKeepAlive { return }
            }
        }
    }

    private static func write(
        _ response: AdminResponse,
        version: HTTPVersion,
        keepAlive: Bool,
        includeBody: Bool,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in response.extraHeaders { headers.add(name: name, value: value) }
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if version.major == 1 && version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        let head = HTTPResponseHead(
            version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        // A response to HEAD carries the headers of the GET answer but never a body (RFC 9110 §9.3.2).
        let body: [HTTPServerResponsePart] = includeBody ? [.body(.byteBuffer(ByteBuffer(bytes: response.body)))] : []
        try await outbound.write(contentsOf: [.head(head)] + body + [.end(nil)])
    }

    /// Whether a failed bind of `address` should be retried on `0.0.0.0`: only the IPv6 wildcard, and only when the
    /// kernel has no IPv6 (socket family unsupported, or no IPv6 address to bind).
    static func shouldFallBackToIPv4(_ address: ListenAddress, after error: any Error) -> Bool {
        let errno = Self.errno(of: error)
        return address.isIPv6Wildcard && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)
    }

    private static func errno(of error: any Error) -> CInt? {
        (error as? IOError)?.errnoCode
    }

    private static func bindError(_ error: any Error, address: String) -> AdminServerError {
        if let error = error as? AdminServerError { return error }
        let code: AdminServerError.Code = Self.errno(of: error) == EADDRINUSE ? .addressInUse : .bindFailed
        return AdminServerError(code: code, address: address, detail: "\(error)")
    }
}

/// Listener bookkeeping shared between ``AdminServer/bind()`` and ``AdminServer/run()``.
private final class LockedState: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    struct Value {
        var bound = false
        var serving = false
        var listeners: [AdminServer.Listener] = []
    }

    private let lock = NSLock()
    private var value = Value()

    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        self.lock.withLock { body(&self.value) }
    }
}

/// Counts open admin connections against the configured limit.
private final class ConnectionCounter: @unchecked Sendable {
    // @unchecked: `open` is only touched under `lock`.
    private let lock = NSLock()
    private let limit: Int
    private var open = 0

    init(limit: Int) {
        self.limit = limit
    }

    func acquire() -> Bool {
        self.lock.withLock {
            guard self.open < self.limit else { return false }
            self.open += 1
            return true
        }
    }

    func release() {
        self.lock.withLock { self.open -= 1 }
    }
}
