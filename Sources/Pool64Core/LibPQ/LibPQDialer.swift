import CLibPQ
import Foundation
import Glibc
import Logging
import NIOConcurrencyHelpers

/// Dials server connections with libpq without blocking anyone: `PQconnectStartParams` + `PQconnectPoll`, driven
/// by `poll(2)` on one dedicated thread shared by all dials (DESIGN decision 3). SwiftNIO cannot watch a descriptor
/// it does not own, and dials are rare, so one thread is enough; the relay never runs here.
public final class LibPQDialer: Sendable {
    /// Result of one dial.
    public typealias Completion = @Sendable (Result<LibPQConnection, DialError>) -> Void

    struct Attempt {
        let id: Int
        let conn: OpaquePointer
        var wantWrite: Bool
        let deadline: UInt64
        let completion: Completion
        var onConnected: (@Sendable () -> Void)?
    }

    private struct State {
        var pending: [(id: Int, params: [(String, String)], timeout: Double, completion: Completion, onConnected: (@Sendable () -> Void)?)] = []
        var cancelled: Set<Int> = []
        var nextID = 1
        var stopping = false
    }

    private let state = NIOLockedValueBox(State())
    private let wakeFD: Int32

    public init() {
        // A self-pipe wakes the poll loop when a dial is queued or cancelled.
        var fds: [Int32] = [0, 0]
        _ = pipe(&fds)
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeFD = fds[1]
        let fd = fds[0]
        let box = state
        let thread = Thread { Self.run(wakeFD: fd, state: box) }
        thread.start()
    }

    /// Starts a dial with libpq keyword/value parameters; `completion` runs on the dial thread.
    /// Returns an id usable with `cancel(_:)` (Happy Eyeballs cancels the losers).
    @discardableResult
    /// `onConnected` runs once, on the dial thread, when the TCP connection is established (before TLS and
    /// authentication): Happy Eyeballs races connections, not logins (RFC 8305 §5).
    public func dial(
        parameters: [(String, String)], timeout: Double, onConnected: (@Sendable () -> Void)? = nil,
        completion: @escaping Completion
    ) -> Int {
        let id = state.withLockedValue { s in
            let id = s.nextID
            s.nextID += 1
            s.pending.append((id, parameters, timeout, completion, onConnected))
            return id
        }
        wake()
        return id
    }

    /// Abandons a dial in progress; its completion is not called.
    public func cancel(_ id: Int) {
        state.withLockedValue { _ = $0.cancelled.insert(id) }
        wake()
    }

    public func shutdown() {
        state.withLockedValue { $0.stopping = true }
        wake()
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeFD, &one, 1)
    }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private static func run(wakeFD: Int32, state: NIOLockedValueBox<State>) {
        var attempts: [Attempt] = []
        while true {
            let (newOnes, cancelled, stopping) = state.withLockedValue { s in
                let p = s.pending
                let c = s.cancelled
                s.pending = []
                s.cancelled = []
                return (p, c, s.stopping)
            }
            if stopping {
                for a in attempts { PQfinish(a.conn) }
                return
            }
            if !cancelled.isEmpty {
                attempts.removeAll { a in
                    if cancelled.contains(a.id) {
                        PQfinish(a.conn)
                        return true
                    }
                    return false
                }
            }
            for p in newOnes where !cancelled.contains(p.id) {
                if var a = start(p.id, p.params, p.timeout, p.completion) {
                    a.onConnected = p.onConnected
                    attempts.append(a)
                }
            }
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            for a in attempts {
                fds.append(pollfd(fd: PQsocket(a.conn), events: Int16(a.wantWrite ? POLLOUT : POLLIN), revents: 0))
            }
            let t = now()
            var timeoutMS: Int32 = 1000
            for a in attempts {
                let left = a.deadline > t ? Int32(min(1000, (a.deadline - t) / 1_000_000 + 1)) : 0
                timeoutMS = min(timeoutMS, left)
            }
            _ = poll(&fds, nfds_t(fds.count), timeoutMS)
            if fds[0].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                _ = read(wakeFD, &drain, 64)
            }
            let after = now()
            var still: [Attempt] = []
            for (i, var a) in attempts.enumerated() {
                let ready = fds[i + 1].revents != 0
                if !ready {
                    if after >= a.deadline {
                        PQfinish(a.conn)
                        a.completion(.failure(DialError(message: "timeout expired while connecting")))
                    } else {
                        still.append(a)
                    }
                    continue
                }
                let polled = PQconnectPoll(a.conn)
                if let connected = a.onConnected, PQstatus(a.conn) != CONNECTION_STARTED {
                    a.onConnected = nil
                    connected()
                }
                switch polled {
                case PGRES_POLLING_OK:
                    a.completion(.success(LibPQConnection(a.conn)))
                case PGRES_POLLING_FAILED:
                    let msg = String(cString: PQerrorMessage(a.conn))
                    PQfinish(a.conn)
                    a.completion(.failure(DialError(message: msg)))
                case PGRES_POLLING_WRITING:
                    a.wantWrite = true
                    still.append(a)
                default:
                    a.wantWrite = false
                    still.append(a)
                }
            }
            attempts = still
        }
    }

    private static func start(
        _ id: Int, _ params: [(String, String)], _ timeout: Double, _ completion: @escaping Completion
    ) -> Attempt? {
        let keys = params.map { strdup($0.0) } + [nil]
        let values = params.map { strdup($0.1) } + [nil]
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        let conn: OpaquePointer? = keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                k.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: k.count) { kp in
                    v.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: v.count) { vp in
                        PQconnectStartParams(kp, vp, 0)
                    }
                }
            }
        }
        guard let conn else {
            completion(.failure(DialError(message: "out of memory")))
            return nil
        }
        if PQstatus(conn) == CONNECTION_BAD {
            let msg = String(cString: PQerrorMessage(conn))
            PQfinish(conn)
            completion(.failure(DialError(message: msg)))
            return nil
        }
        let deadline = now() + UInt64(max(timeout, 0.1) * 1_000_000_000)
        // libpq's contract: after PQconnectStart, act as if the last poll said PGRES_POLLING_WRITING.
        return Attempt(id: id, conn: conn, wantWrite: true, deadline: deadline, completion: completion)
    }
}

/// A failed dial, with libpq's message (which includes the server's own error, e.g. a password failure).
public struct DialError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message.trimmingCharacters(in: "\n ") }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
