import CPool64Sys
import Dispatch
import Glibc
import Logging
import Pool64Wire

/// The successor's side of the listener hand-over: asks the pool64 listening on the control socket for its
/// listening sockets, then forwards to it the CancelRequests meant for its clients.
public final class Predecessor: @unchecked Sendable {
    /// What the predecessor offered.
    public let offer: HandoverOffer
    /// Its listening sockets by configured address (`[::]:6432`); the caller adopts or closes each.
    public let listeners: [String: Int32]
    private let socket: ControlSocket
    private let logger: Logger
    // Forwarding writes 16 bytes to a Unix socket, which does not block in practice; a serial queue keeps the relay
    // loop free of even that, and keeps forwarded cancels in order.
    private let queue = DispatchQueue(label: "pool64.handover.cancel")
    private var gone = false

    private init(offer: HandoverOffer, listeners: [String: Int32], socket: ControlSocket, logger: Logger) {
        self.offer = offer
        self.listeners = listeners
        self.socket = socket
        self.logger = logger
    }

    /// Asks the process on `path` for its listeners. nil when no pool64 listens there (no file, or a stale one):
    /// the caller binds its own. Throws when one answers but the exchange fails; the caller should then stop rather
    /// than fight the running process for the port.
    public static func request(path: String, logger: Logger) throws(HandoverError) -> Predecessor? {
        let fd = cpool64_unix_connect(path)
        if fd == -ENOENT || fd == -ECONNREFUSED { return nil }
        guard fd >= 0 else { throw HandoverError("connect to \(path)", errno: -fd) }
        let socket = ControlSocket(fd: fd)
        socket.setReceiveTimeout(seconds: 10)
        try socket.writeAll(HandoverLine.request)
        let (payload, fds) = try socket.receiveWithDescriptors(maximum: HandoverOffer.maximumSize)
        func refuse(_ reason: String) -> HandoverError {
            for fd in fds { close(fd) }
            try? socket.writeAll(HandoverLine.refused)
            return HandoverError("offer", reason)
        }
        guard let offer = HandoverOffer.decode(payload) else { throw refuse("not a pool64 hand-over offer") }
        guard offer.listeners.count == fds.count else {
            throw refuse("\(offer.listeners.count) listeners offered with \(fds.count) descriptors")
        }
        for fd in fds where cpool64_socket_is_listening_tcp(fd) != 1 {
            throw refuse("descriptor \(fd) is not a listening TCP socket")
        }
        socket.setReceiveTimeout(seconds: 0)
        return Predecessor(
            offer: offer, listeners: Dictionary(zip(offer.listeners, fds)) { first, _ in first }, socket: socket,
            logger: logger)
    }

    /// Tells the predecessor its listeners are taken: it stops accepting and retires.
    public func accept() throws(HandoverError) {
        try socket.writeAll(HandoverLine.accepted)
    }

    /// Tells the predecessor the listeners could not be used; it keeps serving.
    public func refuse() {
        try? socket.writeAll(HandoverLine.refused)
        socket.close()
    }

    /// Sends a CancelRequest on to the predecessor. Any thread.
    public func forwardCancel(processID: Int32, secretKey: Int32) {
        queue.async { [self] in
            guard !gone else { return }
            do {
                try socket.writeAll(CancelKey.cancelRequest(processID: processID, secretKey: secretKey))
            } catch {
                // The predecessor has drained and exited: its clients are gone, so is anything to cancel.
                gone = true
                logger.debug("predecessor gone; cancel request dropped", metadata: ["error": "\(error)"])
            }
        }
    }
}
