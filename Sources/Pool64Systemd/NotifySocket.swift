#if canImport(Glibc)
import Glibc
#endif

/// A failed system call on the notification socket; `errno` says why (ECONNREFUSED or ENOENT when the manager's
/// socket is gone, EAGAIN when its queue is full).
public struct NotifySocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call that failed: `socket` or `sendto`.
    public var operation: String
    /// The errno it left.
    public var errno: Int32

    /// The error as one line, with strerror's text.
    public var description: String { "\(operation): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The sending half of the notify protocol: one unconnected AF_UNIX datagram socket, each message sent with
/// sendto(2) to the manager's address. The protocol is just that (sd_notify(3) "Notes"), so no libsystemd.
///
/// Unconnected, like sd_notify: a manager that re-executes itself (`systemctl daemon-reexec`) binds a new socket at
/// the same address, and the next sendto finds it.
public final class NotifySocket: Sendable {
    private let fd: Int32
    private let address: NotifySocketAddress

    /// Opens the socket (close-on-exec, so no child inherits a way to speak for pool64).
    public init(address: NotifySocketAddress) throws(NotifySocketError) {
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { throw NotifySocketError(operation: "socket", errno: errno) }
        self.fd = fd
        self.address = address
    }

    deinit { close(fd) }

    /// Sends `text` as one datagram. Never blocks: the manager reads its socket promptly, and a full queue should
    /// cost a notification, not stall the caller (a relay-loop hop or a drain).
    public func send(_ text: String) throws(NotifySocketError) {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = address.sunPath
        // NotifySocketAddress checked the length against sun_path; check again rather than trust it with memory.
        guard path.count <= MemoryLayout.size(ofValue: addr.sun_path) else {
            throw NotifySocketError(operation: "sendto", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { sun in
            sun.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2) + socklen_t(path.count)
        var bytes = Array(text.utf8)
        let sent = bytes.withUnsafeMutableBytes { buf in
            withUnsafePointer(to: &addr) { ap in
                ap.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    sendto(fd, buf.baseAddress, buf.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), sa, length)
                }
            }
        }
        guard sent >= 0 else { throw NotifySocketError(operation: "sendto", errno: errno) }
    }
}
