import CPool64Sys
import Glibc
import Logging
import NIOCore
import Pool64Resolver

/// Binds listening sockets dual-stack on purpose: `[::]` with `IPV6_V6ONLY=0` set explicitly (never relying on
/// `net.ipv6.bindv6only`), falling back to `0.0.0.0` with a warning when the kernel has no IPv6 (DESIGN decision 6).
/// The sockets are accepted on the relay loop (`RelayLoop`).
public enum Listener {
    /// Binds every address; a port in use fails with an error naming the address. Call from any thread but the loop.
    /// An address found in `inherited` (keyed by `ListenAddress.description`) uses that already listening socket,
    /// handed over by the pool64 this process replaces, instead of binding; inherited sockets not asked for are
    /// closed.
    public static func bind(
        _ addresses: [ListenAddress], inherited: [String: Int32] = [:], loop: RelayLoop, logger: Logger,
        onAccept: @escaping (_ fd: Int32, _ peer: PeerAddress) -> Void
    ) throws -> [BoundListener] {
        var bound: [BoundListener] = []
        var unused = inherited
        do {
            for a in addresses {
                let fd = try unused.removeValue(forKey: a.description) ?? open(a, logger: logger)
                let l = BoundListener(fd: fd, requested: a, loop: loop, logger: logger, onAccept: onAccept)
                bound.append(l)
            }
        } catch {
            for l in bound { Glibc.close(l.fd) }
            for fd in unused.values { Glibc.close(fd) }
            throw error
        }
        for fd in unused.values { Glibc.close(fd) }
        // Registration happens on the loop; wait for it so the caller can report the listeners as open.
        try loop.submit { for l in bound { l.start() } }.wait()
        return bound
    }

    static func open(_ a: ListenAddress, logger: Logger) throws -> Int32 {
        let host = a.host
        let v6only: Int32 = a.isIPv6 ? (a.isIPv6Wildcard ? 0 : 1) : -1
        var fd = cpool64_listen(host, Int32(a.port), v6only, 4096)
        if fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL, a.isIPv6Wildcard {
            logger.warning("no IPv6 on this host; listening on 0.0.0.0 instead", metadata: ["address": "\(a)"])
            fd = cpool64_listen("0.0.0.0", Int32(a.port), -1, 4096)
        }
        if fd == -EINVAL {
            throw ListenError(address: a.description, underlying: "not a numeric IP address")
        }
        if fd < 0 {
            throw ListenError(address: a.description, underlying: String(cString: strerror(-fd)))
        }
        return fd
    }
}

/// One listening socket on the relay loop; accepts until the backlog is empty on every readiness event.
public final class BoundListener: RelayLoopHandler, @unchecked Sendable {
    let fd: Int32
    /// The configured address this socket serves (the key of a hand-over).
    public let requested: ListenAddress
    unowned let loop: RelayLoop
    let logger: Logger
    let onAccept: (Int32, PeerAddress) -> Void
    private var open = true
    private var paused = false
    /// The bound address as `host:port` (IPv6 in brackets).
    public let address: String

    init(
        fd: Int32, requested: ListenAddress, loop: RelayLoop, logger: Logger,
        onAccept: @escaping (Int32, PeerAddress) -> Void
    ) {
        self.fd = fd
        self.requested = requested
        self.loop = loop
        self.logger = logger
        self.onAccept = onAccept
        address = Self.describe(fd)
    }

    private static func describe(_ fd: Int32) -> String {
        var host = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        guard cpool64_local_address(fd, &host, 64, &port) == 0 else { return "unknown" }
        return ListenAddress.displayPeer(ip: String(cString: host), port: Int(port))
    }

    fileprivate func start() {
        _ = loop.register(fd, self, events: UInt32(CPOOL64_EPOLLIN))
    }

    override func readable() {
        guard open else { return }
        var peer = cpool64_peer()
        // Bounded so a flood of connections cannot starve the sockets already open.
        for _ in 0..<256 {
            let c = cpool64_accept(fd, &peer)
            if c >= 0 {
                cpool64_tune_client_socket(c)
                onAccept(c, PeerAddress(peer))
                continue
            }
            switch -c {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                if -c == EAGAIN || -c == EWOULDBLOCK { return }
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors: stop accepting for a moment instead of spinning on a readable listener.
                logger.warning("cannot accept connections", metadata: ["error": "\(String(cString: strerror(-c)))"])
                pause()
                return
            default:
                logger.warning("accept failed", metadata: ["error": "\(String(cString: strerror(-c)))"])
                return
            }
        }
    }

    private func pause() {
        guard !paused else { return }
        paused = true
        loop.modify(fd, events: 0)
        _ = loop.scheduleTask(in: .milliseconds(100)) { [self] in
            paused = false
            if open { loop.modify(fd, events: UInt32(CPOOL64_EPOLLIN)) }
        }
    }

    /// The listening socket, to hand to a successor (which gets its own descriptor for it). Valid until `close()`.
    public var descriptor: Int32 { fd }

    /// Stops accepting and closes the socket. Any thread.
    public func close() {
        loop.execute { [self] in
            guard open else { return }
            open = false
            loop.unregister(fd)
            Glibc.close(fd)
        }
    }
}

/// A listener that could not be opened.
public struct ListenError: Error, CustomStringConvertible {
    public var address: String
    public var underlying: String
    public var description: String { "cannot listen on \(address): \(underlying)" }
}

/// A client's address as accepted, formatted only when asked (logs): making the text per accept was a few percent
/// of a short connection's CPU.
public struct PeerAddress: Sendable, CustomStringConvertible {
    private let raw: cpool64_peer

    init(_ raw: cpool64_peer) { self.raw = raw }

    /// The numeric host (IPv4-mapped shown as IPv4) and the port, apart.
    public var hostAndPort: (String, Int) {
        var r = raw
        var host = [CChar](repeating: 0, count: 64)
        cpool64_peer_text(&r, &host, 64)
        return (ListenAddress.unmapped(String(cString: host)), Int(raw.port))
    }

    /// `a.b.c.d:port` or `[v6]:port` (IPv4-mapped peers of a dual-stack socket shown as IPv4).
    public var description: String {
        var r = raw
        var host = [CChar](repeating: 0, count: 64)
        cpool64_peer_text(&r, &host, 64)
        guard host[0] != 0 else { return "unknown" }
        return ListenAddress.displayPeer(ip: String(cString: host), port: Int(raw.port))
    }
}

extension cpool64_peer: @unchecked @retroactive Sendable {}
