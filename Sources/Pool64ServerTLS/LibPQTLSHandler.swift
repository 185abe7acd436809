import CLibPQ
import CPool64TLS
import NIOCore

/// Errors raised by ``LibPQTLSHandler``. They reach the pipeline through `errorCaught`, after which the
/// handler closes the channel.
public struct LibPQTLSError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The connection does not use OpenSSL TLS (`PQsslInUse != 1`), or its `SSL*` could not be re-plumbed.
        case attachFailed
        /// OpenSSL reported an error reading or writing (bad record MAC, unexpected message, …).
        case tlsFailure
        /// OpenSSL wants to read before it can write: TLS renegotiation, which PostgreSQL never starts.
        case renegotiationUnsupported
        /// A write arrived after the session was detached (channel closing, or handler removed).
        case notAttached
    }

    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "LibPQTLSError.\(kind): \(message)" }
}

/// Outbound user event for ``LibPQTLSHandler``: start a TLS 1.3 key update now
/// (`channel.triggerUserOutboundEvent(LibPQTLSKeyUpdate(requestPeerUpdate: true))`). The promise fails with
/// ``LibPQTLSError`` on a TLS 1.2 session.
public struct LibPQTLSKeyUpdate: Sendable, Hashable {
    /// Also ask the server to update its sending keys (it answers with its own KeyUpdate).
    public var requestPeerUpdate: Bool

    public init(requestPeerUpdate: Bool = true) {
        self.requestPeerUpdate = requestPeerUpdate
    }
}

/// Relays PostgreSQL protocol bytes through the TLS session that libpq negotiated for a server connection.
///
/// libpq dials and authenticates (including TLS); pool64 then duplicates libpq's socket
/// (`fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0)`), adopts the duplicate as a NIO channel
/// (`ClientBootstrap.withConnectedSocket`) and puts this handler **first** in its pipeline. The handler moves
/// libpq's `SSL*` onto a pair of memory BIOs: ciphertext read from the socket is decrypted and passed on as
/// plaintext `ByteBuffer`s; plaintext `ByteBuffer`s written by the handlers behind it are encrypted and written to
/// the socket. When the handler is removed (which NIO does when the channel closes, before `closeFuture`
/// completes) it puts libpq's own BIO back.
///
/// Contract for the caller:
/// - Before adding: `PQstatus == CONNECTION_OK`, `PQsslInUse == 1`, the connection is idle
///   (`PQtransactionStatus == PQTRANS_IDLE`, `PQisBusy == 0`, notifications drained), and libpq is not used
///   on the `PGconn` from then on until `channel.closeFuture` has completed. The `PGconn` must outlive the
///   channel: never call `PQfinish` before `closeFuture` completes.
/// - Threading: the handler touches the `PGconn`'s `SSL*` only on the channel's event loop (in its
///   `ChannelHandler` callbacks). It is not `Sendable`; create it inside the channel initializer or on the loop.
/// - Afterwards (once `closeFuture` has completed): libpq's BIO is restored, so `PQfinish` sends Terminate and
///   TLS close_notify over libpq's own descriptor (which closing the channel's duplicate does not close). If the
///   relay stopped at a quiescent point (the last thing received was ReadyForQuery and nothing was sent since),
///   libpq can even keep using the connection (e.g. `PQexec`), but its cached view of session state may be stale.
/// - The handler never sends close_notify by itself; send Terminate through the pipeline, or detach and let
///   `PQfinish` do both.
public final class LibPQTLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Plaintext handed to OpenSSL per `SSL_write` call; bounds the memory BIO's size for large writes.
    private static let writeChunk = 64 * 1024
    /// Upper bound for TLS record overhead per 16 KiB record (header, explicit nonce/IV, tag, padding).
    private static let recordOverhead = 64

    private let connection: OpaquePointer
    /// `cpool64_tls *` while attached.
    private var session: OpaquePointer?
    private var peerSentCloseNotify = false
    private var attachFailed = false

    /// - Parameter connection: the libpq `PGconn *` whose TLS session to relay through. See the type's
    ///   documentation for what the caller must guarantee.
    public init(connection: OpaquePointer) {
        self.connection = connection
    }

    /// Whether libpq's `SSL*` currently runs on this handler's memory BIOs. Event loop only.
    public var isAttached: Bool { session != nil }

    /// Whether the server has sent TLS close_notify (it does when its backend exits). Event loop only.
    public var receivedCloseNotify: Bool { peerSentCloseNotify }

    // MARK: lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        guard let session = cpool64_tls_attach(connection) else {
            attachFailed = true
            // Closing a channel that is still being set up (inside a bootstrap's channel initializer, before
            // registration) trips NIO's lifecycle assertions: report the failure once the channel is active.
            if context.channel.isActive {
                reportAttachFailure(context: context)
            }
            return
        }
        self.session = session
    }

    private func reportAttachFailure(context: ChannelHandlerContext) {
        context.fireErrorCaught(
            LibPQTLSError(kind: .attachFailed, message: "connection does not use OpenSSL TLS (PQsslInUse != 1)")
        )
        context.close(promise: nil)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        detach()
    }

    public func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if attachFailed {
            reportAttachFailure(context: context)
            return
        }
        // OpenSSL could hold plaintext decrypted before the handover; pass it on now that the pipeline is complete.
        if let session, cpool64_tls_pending_plaintext(session) > 0 {
            decryptAndForward(context: context)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        // The socket is gone: give the SSL* back to libpq right away.
        detach()
        context.fireChannelInactive()
    }

    private func detach() {
        if let session {
            cpool64_tls_detach(session)
            self.session = nil
        }
    }

    // MARK: inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }  // detached or failed: drop ciphertext
        let ciphertext = unwrapInboundIn(data)
        let fed = ciphertext.withUnsafeReadableBytes { bytes in
            cpool64_tls_feed(session, bytes.baseAddress, bytes.count)
        }
        if fed != 0 {
            fail(context: context, kind: .tlsFailure, session: session)
            return
        }
        decryptAndForward(context: context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    /// Decrypts everything OpenSSL can decrypt now, forwards it as one buffer, and sends any ciphertext OpenSSL
    /// produced while reading (TLS 1.3 KeyUpdate responses, alerts).
    private func decryptAndForward(context: ChannelHandlerContext) {
        guard let session else { return }
        // Plaintext is never larger than the ciphertext it came from, except for one record that was already
        // partly consumed; start at that size and let ByteBuffer grow in the rare other case.
        let estimate = cpool64_tls_pending_input(session) + cpool64_tls_pending_plaintext(session)
        var plaintext = context.channel.allocator.buffer(capacity: max(estimate, 256))
        var status: Int32 = 0
        while true {
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: 1024) { out in
                status = cpool64_tls_read(session, out.baseAddress, out.count)
                return status > 0 ? Int(status) : 0
            }
            if status <= 0 { break }
        }

        if status == CPOOL64_TLS_CLOSED {
            peerSentCloseNotify = true
        }
        flushPendingCiphertext(context: context, session: session)
        if plaintext.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(plaintext))
        }
        if status == CPOOL64_TLS_ERROR {
            // The channel may have been closed by a handler reacting to the plaintext above.
            if let session = self.session {
                fail(context: context, kind: .tlsFailure, session: session)
            }
        }
    }

    /// Writes and flushes ciphertext that OpenSSL queued outside of `write` (post-handshake messages).
    private func flushPendingCiphertext(context: ChannelHandlerContext, session: OpaquePointer) {
        let pending = cpool64_tls_pending_output(session)
        guard pending > 0 else { return }
        var out = context.channel.allocator.buffer(capacity: pending)
        drain(session: session, into: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    private func drain(session: OpaquePointer, into out: inout ByteBuffer) {
        while true {
            let pending = cpool64_tls_pending_output(session)
            if pending == 0 { return }
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { bytes in
                cpool64_tls_drain(session, bytes.baseAddress, bytes.count)
            }
        }
    }

    // MARK: outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let session else {
            let kind: LibPQTLSError.Kind = attachFailed ? .attachFailed : .notAttached
            promise?.fail(LibPQTLSError(kind: kind, message: "TLS session is not attached"))
            return
        }
        let plaintext = unwrapOutboundIn(data)
        let length = plaintext.readableBytes
        let records = length / 16384 + 1
        var out = context.channel.allocator.buffer(
            capacity: length + records * Self.recordOverhead + cpool64_tls_pending_output(session)
        )
        var status: Int32 = 0
        plaintext.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = min(Self.writeChunk, bytes.count - offset)
                status = cpool64_tls_write(session, bytes.baseAddress! + offset, n)
                if status != 0 { return }
                offset += n
                drain(session: session, into: &out)
            }
        }
        if status != 0 {
            let kind: LibPQTLSError.Kind = status == CPOOL64_TLS_WRITE_WANTS_READ ? .renegotiationUnsupported : .tlsFailure
            let error = LibPQTLSError(kind: kind, message: errorString(session))
            promise?.fail(error)
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        drain(session: session, into: &out)  // zero-length writes may still flush queued post-handshake output
        context.write(wrapOutboundOut(out), promise: promise)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let request = event as? LibPQTLSKeyUpdate else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        guard let session else {
            promise?.fail(LibPQTLSError(kind: .notAttached, message: "TLS session is detached"))
            return
        }
        guard cpool64_tls_key_update(session, request.requestPeerUpdate ? 1 : 0) == 0 else {
            promise?.fail(LibPQTLSError(kind: .tlsFailure, message: errorString(session)))
            return
        }
        var out = context.channel.allocator.buffer(capacity: cpool64_tls_pending_output(session))
        drain(session: session, into: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: promise)
    }

    /// The negotiated TLS version as OpenSSL reports it (`0x0304` = TLS 1.3), or `nil` when detached.
    /// Event loop only.
    public var tlsProtocolVersion: Int? {
        session.map { Int(cpool64_tls_protocol_version($0)) }
    }

    // MARK: errors

    private func fail(context: ChannelHandlerContext, kind: LibPQTLSError.Kind, session: OpaquePointer) {
        let error = LibPQTLSError(kind: kind, message: errorString(session))
        // Nothing more can be trusted from this session; stop feeding it (libpq's BIO is restored, but the
        // connection is not reusable: the caller should PQfinish it).
        detach()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func errorString(_ session: OpaquePointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            let length = cpool64_tls_error_string(session, buffer.baseAddress, buffer.count)
            return String(
                decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: length).bindMemory(to: UInt8.self),
                as: UTF8.self
            )
        }
    }
}

@available(*, unavailable)
extension LibPQTLSHandler: Sendable {}
