import CPool64Sys
import Foundation
import Glibc
import Logging
import Pool64Wire

/// The predecessor's side of the listener hand-over: a Unix socket at `path` on which a newly started pool64 asks for
/// this process's listening sockets. After a successful hand-over the kernel keeps queueing connections on the same
/// sockets, now accepted by the successor only, so no connection is refused and none waits in a backlog that is being
/// closed (which is what closing one of several SO_REUSEPORT sockets does without `net.ipv4.tcp_migrate_req`).
///
/// One hand-over per process: once it succeeds the control socket closes (the successor binds the path next) and the
/// connection stays open only to carry cancel requests the successor forwards for clients still connected here.
public final class HandoverServer: @unchecked Sendable {
    /// What the server asks of the process it belongs to. Called on the hand-over thread.
    public struct Handlers: Sendable {
        /// The current listeners: the offer and one descriptor per listen address (the process keeps its own).
        public var offer: @Sendable () -> (HandoverOffer, [Int32])
        /// The successor has the listeners: stop accepting and retire.
        public var handedOver: @Sendable (_ successorPID: Int32?) -> Void
        /// A CancelRequest the successor received for a key this process (or one before it) issued.
        public var cancel: @Sendable (_ processID: Int32, _ secretKey: Int32) -> Void

        public init(
            offer: @escaping @Sendable () -> (HandoverOffer, [Int32]),
            handedOver: @escaping @Sendable (Int32?) -> Void,
            cancel: @escaping @Sendable (Int32, Int32) -> Void
        ) {
            self.offer = offer
            self.handedOver = handedOver
            self.cancel = cancel
        }
    }

    public let path: String
    let handlers: Handlers
    let logger: Logger
    private var listener: ControlSocket?

    public init(path: String, handlers: Handlers, logger: Logger) {
        self.path = path
        self.handlers = handlers
        self.logger = logger
    }

    /// Binds the control socket (replacing a stale file left by a predecessor) and starts the hand-over thread.
    public func start() throws(HandoverError) {
        // The predecessor, if any, has already handed over and closed its control socket: the file is stale.
        unlink(path)
        let fd = cpool64_unix_listen(path, 4)
        guard fd >= 0 else { throw HandoverError("listen on \(path)", errno: -fd) }
        // Owner only: whoever can connect here can take the listeners over.
        chmod(path, 0o600)
        let socket = ControlSocket(fd: fd)
        listener = socket
        let thread = Thread { [self] in acceptLoop(socket) }
        thread.name = "pool64-handover"
        thread.start()
    }

    private func acceptLoop(_ socket: ControlSocket) {
        while true {
            let c = cpool64_unix_accept(socket.fd)
            if c < 0 {
                if c == -EINTR || c == -ECONNABORTED { continue }
                // The listener was shut down (stop()) or broke: no more hand-overs from this process.
                return
            }
            let peer = ControlSocket(fd: c)
            peer.setReceiveTimeout(seconds: 10)
            do {
                if case .accepted(let successor) = try exchange(with: peer) {
                    socket.close()
                    handlers.handedOver(successor)
                    peer.setReceiveTimeout(seconds: 0)
                    relayCancels(from: peer)
                    return
                }
            } catch {
                logger.warning("listener hand-over failed; still serving", metadata: ["error": "\(error)"])
            }
            peer.close()
        }
    }

    /// How one exchange ended.
    private enum Outcome {
        /// The successor took the listeners (its pid, from SO_PEERCRED, when known).
        case accepted(successorPID: Int32?)
        /// The successor could not use them; this process keeps serving.
        case refused
    }

    private func exchange(with peer: ControlSocket) throws(HandoverError) -> Outcome {
        guard let request = try peer.readLine(limit: 64), request == HandoverLine.request else {
            throw HandoverError("request", "not a pool64 hand-over request")
        }
        let (offer, fds) = handlers.offer()
        try peer.sendWithDescriptors(offer.encoded(), fds)
        guard let answer = try peer.readLine(limit: 64) else {
            throw HandoverError("answer", "successor closed the connection before answering")
        }
        guard answer == HandoverLine.accepted else {
            logger.warning("successor refused the listeners; still serving")
            return .refused
        }
        return .accepted(successorPID: peerPID(peer.fd))
    }

    private func peerPID(_ fd: Int32) -> Int32? {
        let pid = cpool64_peer_pid(fd)
        return pid > 0 ? pid : nil
    }

    private func relayCancels(from peer: ControlSocket) {
        while true {
            guard let packet = try? peer.readExactly(16) else { return }
            guard let (pid, key) = CancelKey.parseCancelRequest(packet) else {
                logger.warning("successor sent something that is not a CancelRequest; closing the connection")
                peer.close()
                return
            }
            handlers.cancel(pid, key)
        }
    }

    /// Stops offering hand-overs (the process is shutting down for another reason). Any thread.
    public func stop() {
        if let l = listener { shutdown(l.fd, Int32(SHUT_RDWR)) }
    }
}
