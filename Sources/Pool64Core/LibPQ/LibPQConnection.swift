import CLibPQ
import Glibc

/// An authenticated libpq connection, owned by exactly one server connection at a time.
///
/// `PGconn *` is not thread-safe; this wrapper is `@unchecked Sendable` because it is handed from the dial thread to
/// the proxy event loop once, after libpq's work on it is finished, and only that loop touches it afterwards.
public final class LibPQConnection: @unchecked Sendable {
    let conn: OpaquePointer
    private var finished = false

    init(_ conn: OpaquePointer) { self.conn = conn }

    /// Parameters the server reported at startup (`server_version`, `TimeZone`, …).
    public func parameterStatus(_ name: String) -> String? {
        guard let p = PQparameterStatus(conn, name) else { return nil }
        return String(cString: p)
    }

    public var usesTLS: Bool { PQsslInUse(conn) != 0 }
    /// libpq's own descriptor (read-only use: getsockname/getpeername for SHOW SERVERS), -1 when closed.
    var socket: Int32 { finished ? -1 : PQsocket(conn) }
    /// The server backend's process ID.
    var backendPID: Int32 { finished ? 0 : PQbackendPID(conn) }

    /// A duplicate of libpq's socket for the relay: the event loop owns and closes the duplicate while libpq keeps
    /// its own descriptor, so `PQfinish` later closes only libpq's (DESIGN "Facts": never give libpq's fd away).
    func duplicateSocket() -> Int32 {
        fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0)
    }

    /// libpq's cancel handle, taken before the relay starts (it records the server address and key).
    func makeCancelHandle() -> CancelHandle? {
        guard let c = PQgetCancel(conn) else { return nil }
        return CancelHandle(c)
    }

    /// Drains notifications libpq buffered during startup so nothing is lost or left behind.
    func drainNotifies() {
        while let n = PQnotifies(conn) { PQfreemem(n) }
    }

    /// Closes the libpq side. Idempotent.
    public func finish() {
        guard !finished else { return }
        finished = true
        PQfinish(conn)
    }

    deinit { finish() }
}

/// libpq's `PGcancel`. `PQcancel` is blocking (it opens a new connection), so it is only called off the event loop.
final class CancelHandle: @unchecked Sendable {
    private let handle: OpaquePointer
    init(_ h: OpaquePointer) { handle = h }

    /// Sends a CancelRequest for the query running on this backend. Blocking.
    func cancel() -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        if PQcancel(handle, &buf, 256) == 1 { return nil }
        return String(cString: buf)
    }

    deinit { PQfreeCancel(handle) }
}
