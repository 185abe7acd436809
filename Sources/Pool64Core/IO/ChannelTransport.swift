import NIOCore
import NIOPosix

/// A TLS connection: a NIO channel on the TLS helper loop (NIOSSL for clients, `LibPQTLSHandler` for servers)
/// bridged onto the relay loop. Every read hops to the relay loop and every write hops back; TLS costs more than
/// those hops, and keeping TLS in NIO keeps the certificate handling in a maintained library.
/// `@unchecked Sendable`: its state is relay-loop-confined; the channel is thread-safe.
final class ChannelTransport: Transport, @unchecked Sendable {
    unowned let relay: RelayLoop
    /// Strong until closed (see `SocketConnection.delegate`).
    var delegate: TransportDelegate?
    private var channel: Channel?
    private var queued: [ByteBuffer] = []
    private var closeRequested = false
    private(set) var isOpen = true
    private(set) var isWritable = true

    init(relay: RelayLoop) { self.relay = relay }

    /// The channel is set up (relay loop).
    func attach(_ channel: Channel) {
        self.channel = channel
        for b in queued { channel.write(b, promise: nil) }
        queued = []
        channel.flush()
        if closeRequested { channel.close(promise: nil) }
    }

    /// Completes after the channel has closed (libpq's `PQfinish` must wait for it).
    var closeFuture: EventLoopFuture<Void>? { channel?.closeFuture }

    @discardableResult
    func send(_ bytes: ByteBuffer) -> Bool {
        guard isOpen, bytes.readableBytes > 0 else { return false }
        guard let channel else {
            queued.append(bytes)
            return true
        }
        channel.writeAndFlush(bytes, promise: nil)
        return true
    }

    func setReading(_ on: Bool) {
        channel?.setOption(ChannelOptions.autoRead, value: on).whenFailure { _ in }
    }

    func close() {
        guard isOpen else { return }
        closeRequested = true
        if let channel { channel.close(promise: nil) }
    }

    /// Relay loop: the channel became inactive.
    fileprivate func closed(_ error: String?) {
        guard isOpen else { return }
        isOpen = false
        let d = delegate
        delegate = nil
        d?.transportClosed(error)
    }

    fileprivate func writabilityChanged(_ w: Bool) {
        isWritable = w
        delegate?.writabilityChanged(w)
    }

    /// Adopts `fd` (already connected) as a channel on `group` with `handlers` first, bridged to this transport.
    func adopt(
        fd: Int32, group: EventLoopGroup, handlers: @escaping @Sendable (Channel) throws -> Void,
        failed: @escaping (Error) -> Void
    ) {
        let bridge = ChannelBridgeHandler(transport: self)
        ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try handlers(ch)
                    try ch.pipeline.syncOperations.addHandler(bridge)
                }
            }
            .withConnectedSocket(fd)
            .hop(to: relay)
            .whenComplete { [self] r in
                switch r {
                case .success(let ch): attach(ch)
                case .failure(let e):
                    failed(e)
                    closed("\(e)")
                }
            }
    }
}

/// Last handler of a bridged channel: forwards reads (batched per read cycle), writability and closure to the relay
/// loop, in order (both loops' task queues are FIFO).
private final class ChannelBridgeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    let transport: ChannelTransport
    private var batch: [ByteBuffer] = []

    init(transport: ChannelTransport) { self.transport = transport }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        batch.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        let b = batch
        batch = []
        let t = transport
        t.relay.execute {
            guard let d = t.delegate else { return }
            for x in b { d.received(x) }
            t.delegate?.readComplete()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let w = context.channel.isWritable
        let t = transport
        t.relay.execute { t.writabilityChanged(w) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        channelReadComplete(context: context)
        let t = transport
        t.relay.execute { t.closed(nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let t = transport
        let text = "\(error)"
        t.relay.execute { t.closed(text) }
        context.close(promise: nil)
    }
}
