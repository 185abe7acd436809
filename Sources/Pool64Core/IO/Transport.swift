import CPool64Sys
import Glibc
import NIOCore
import Pool64Wire

/// A byte stream the relay writes to: a plaintext socket on the relay loop (`SocketConnection`) or a TLS NIO
/// channel bridged onto it (`ChannelTransport`). Used only on the relay loop.
protocol Transport: AnyObject {
    var isOpen: Bool { get }
    /// False while unsent bytes exceed the high-water mark; the other side of the relay stops reading until
    /// `TransportDelegate.writabilityChanged(true)`.
    var isWritable: Bool { get }
    /// Writes `bytes` now, or keeps what the socket does not take and writes it when it can. Returns true when the
    /// transport kept a reference to `bytes` (so the caller's storage is not free for reuse).
    @discardableResult
    func send(_ bytes: ByteBuffer) -> Bool
    /// Pauses or resumes reading (backpressure).
    func setReading(_ on: Bool)
    /// Closes; the delegate hears `transportClosed` on a later turn of the loop.
    func close()
}

extension MessageFramer {
    /// Sends up to the next `n` bytes (whole messages accepted by `scanMessages`) to `socket` straight from the
    /// read buffer (`SocketConnection.sendNow`) and consumes what went out; returns how many are left in the framer
    /// for the caller to queue. Pass nil when something is queued ahead of them or the transport is not a plain
    /// socket (then all `n` are left).
    mutating func sendNow(_ n: Int, to socket: Unmanaged<SocketConnection>?) -> Int {
        guard let socket else { return n }
        var left = n
        socket._withUnsafeGuaranteedRef { socket in
            consume(upTo: n) { raw in
                let sent = socket.sendNow(raw)
                left -= sent
                return sent
            }
        }
        return left
    }

    /// At the end of a read: gives lent storage that has drained back to `loop`, and moves bytes still pending in
    /// the loop's shared read buffer into a spare buffer from it (`movePending(into:)`).
    // `loop` as an autoclosure: usually there is nothing to do, and reaching the loop through a connection's pool
    // retains and releases each reference on the way, once per read.
    mutating func releaseReadBuffer(to loop: @autoclosure () -> RelayLoop) {
        guard holdsSpareOrSharedBytes else { return }
        let loop = loop()
        giveBackSpare(to: loop)
        if pendingSharesLargeBuffer { movePending(into: loop.takeBuffer()) }
    }

    /// Gives lent storage that has drained back to `loop` (an idle client holds none).
    mutating func giveBackSpare(to loop: @autoclosure () -> RelayLoop) {
        guard holdsSpareOrSharedBytes, var spare = takeSpare() else { return }
        loop().recycle(&spare)
    }
}

/// Receives a transport's events, on the relay loop. A base class rather than a protocol (as `RelayLoopHandler`):
/// `SocketConnection` calls its delegate through `Unmanaged` without a retain and a release per read, which an
/// existential does not allow.
class TransportDelegate {
    /// Queued for `flushDeferred` at the end of the loop's turn (`RelayLoop.flushAtEndOfTurn`).
    var flushQueued = false
    func received(_ buffer: ByteBuffer) {}
    /// The end of one read batch: time to flush what the bytes produced.
    func readComplete() {}
    /// The loop's turn is ending: send what `RelayLoop.flushAtEndOfTurn` was asked to hold until now.
    func flushDeferred() {}
    func writabilityChanged(_ writable: Bool) {}
    /// The connection is gone (`error` says why when it was not an orderly close or EOF).
    func transportClosed(_ error: String?) {}
}

/// A non-blocking socket registered with the relay loop: reads land in the loop's shared buffer, writes go straight
/// to `send(2)`; only bytes the kernel did not take are kept (and watched for `EPOLLOUT`). `send`/`recv` rather than
/// `write`/`read`: they skip the VFS layer, and `MSG_NOSIGNAL` turns a write to a closed peer into EPIPE instead of
/// SIGPIPE; called as plain system calls (`cpool64_send`/`cpool64_recv`), without glibc's cancellation-point
/// bookkeeping.
final class SocketConnection: RelayLoopHandler, Transport {
    let fd: Int32
    // unowned(unsafe): the loop outlives every socket on it (see ClientSession.proxy).
    unowned(unsafe) let loop: RelayLoop
    /// Strong until the connection closes (the session owns this connection; the cycle ends with it).
    var delegate: TransportDelegate?
    private var pending: ByteBuffer?
    private var reading = true
    private var watchingWrites = false
    private var reportedUnwritable = false
    private(set) var isOpen = true
    /// Unsent bytes above which `isWritable` turns false.
    static let highWater = 256 * 1024

    /// True when no other descriptor refers to this socket (accepted clients; server sockets are duplicates of
    /// libpq's), so closing it is enough to leave the epoll set.
    private let exclusive: Bool

    init(fd: Int32, loop: RelayLoop, exclusive: Bool = false) {
        self.fd = fd
        self.loop = loop
        self.exclusive = exclusive
    }

    /// Starts watching the socket; false (and the descriptor closed) when epoll refuses it.
    func start() -> Bool {
        if loop.register(fd, self, events: events) { return true }
        isOpen = false
        Glibc.close(fd)
        return false
    }

    private var events: UInt32 {
        (reading ? UInt32(CPOOL64_EPOLLIN | CPOOL64_EPOLLRDHUP) : 0) | (watchingWrites ? UInt32(CPOOL64_EPOLLOUT) : 0)
    }

    var isWritable: Bool { (pending?.readableBytes ?? 0) < Self.highWater }

    @discardableResult
    func send(_ bytes: ByteBuffer) -> Bool {
        guard isOpen, bytes.readableBytes > 0 else { return false }
        if pending != nil {
            pending!.writeImmutableBuffer(bytes)
            checkWritability()
            return false
        }
        let n = bytes.withUnsafeReadableBytes { cpool64_send(fd, $0.baseAddress, UInt($0.count), Int32(MSG_NOSIGNAL)) }
        if n == bytes.readableBytes { return false }
        if n < 0 {
            let e = errno
            guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
                fail("write failed: \(String(cString: strerror(e)))")
                return false
            }
        }
        var rest = bytes
        if n > 0 { rest.moveReaderIndex(forwardBy: n) }
        pending = rest
        watchingWrites = true
        loop.modify(fd, events: events)
        checkWritability()
        return true
    }

    /// Writes from memory the caller owns when nothing is queued ahead: returns how many bytes went out (0 when
    /// something is queued); the caller queues the rest with `send`.
    func sendNow(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard isOpen, pending == nil, bytes.count > 0 else { return 0 }
        let n = cpool64_send(fd, bytes.baseAddress, UInt(bytes.count), Int32(MSG_NOSIGNAL))
        if n >= 0 { return n }
        let e = errno
        if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return 0 }
        fail("write failed: \(String(cString: strerror(e)))")
        // The connection is gone; nothing is left to queue.
        return bytes.count
    }

    override func writable() {
        guard isOpen, var p = pending else { return }
        while p.readableBytes > 0 {
            let n = p.withUnsafeReadableBytes { cpool64_send(fd, $0.baseAddress, UInt($0.count), Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                p.moveReaderIndex(forwardBy: n)
                continue
            }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { break }
            fail("write failed: \(String(cString: strerror(e)))")
            return
        }
        if p.readableBytes == 0 {
            pending = nil
            watchingWrites = false
            loop.modify(fd, events: events)
        } else {
            pending = p
        }
        checkWritability()
    }

    private func checkWritability() {
        let w = isWritable
        if w == !reportedUnwritable { return }
        // Hysteresis: report writable again only once the backlog is down to a quarter.
        if w && (pending?.readableBytes ?? 0) > Self.highWater / 4 { return }
        reportedUnwritable = !w
        delegate?.writabilityChanged(w)
    }

    func setReading(_ on: Bool) {
        guard isOpen, on != reading else { return }
        reading = on
        loop.modify(fd, events: events)
    }

    override func readable() {
        guard isOpen, delegate != nil else { return }
        // The delegate and the loop are used without a retain and a release each per read: the loop outlives every
        // socket, and `detach` hands the delegate to the loop until the batch of events ends, so one dropped
        // during its own callback stays alive until the callback returns.
        let d = Unmanaged.passUnretained(delegate!)
        let fd = self.fd
        // One in-place access to the loop's read buffer for the whole read: calling buffer methods on the class
        // property one by one made the compiler retain and release its storage around each.
        let n = Unmanaged.passUnretained(loop)._withUnsafeGuaranteedRef { loop in loop.withReadBuffer { buffer -> Int in
            buffer.clear()
            // After clear() the whole storage is writable; NIO's writable-bytes view would slice it with a generic,
            // non-inlined dropFirst on every read.
            let n = buffer.withVeryUnsafeMutableBytes { cpool64_recv(fd, $0.baseAddress, UInt($0.count), 0) }
            guard n > 0 else { return n }
            buffer.moveWriterIndex(forwardBy: n)
            d._withUnsafeGuaranteedRef { $0.received(buffer) }
            return n
        } }
        if n > 0 {
            d._withUnsafeGuaranteedRef { $0.readComplete() }
            return
        }
        if n == 0 {
            fail(nil)
            return
        }
        let e = errno
        if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return }
        fail(e == ECONNRESET ? nil : "read failed: \(String(cString: strerror(e)))")
    }

    private func fail(_ error: String?) {
        guard isOpen else { return }
        let d = delegate
        Glibc.close(detach(closing: true))
        loop.later { d?.transportClosed(error) }
    }

    func close() {
        fail(nil)
    }

    /// Hands the descriptor over (to a TLS channel): stops watching it and forgets it without closing it.
    /// `closing`: the caller is about to close it (see `exclusive`).
    func detach(closing: Bool = false) -> Int32 {
        isOpen = false
        pending = nil
        loop.unregister(fd, closing: closing && exclusive)
        // `readable` may be inside a call to the delegate without holding it (see there).
        if let d = delegate { loop.keepUntilBatchEnds(d) }
        delegate = nil
        return fd
    }
}
