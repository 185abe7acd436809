/// One thing pool64 tells its service manager: a state change or a heartbeat, in the vocabulary of sd_notify(3)'s
/// "Well-known assignments".
public enum ServiceNotification: Sendable, Equatable {
    /// Startup (or a reload) finished and clients are served: `READY=1`. `mainPID` is sent as `MAINPID=` so the
    /// manager need not guess which process is the service.
    case ready(mainPID: Int32?, status: String?)
    /// A configuration reload began: `RELOADING=1` with `MONOTONIC_USEC=`, the CLOCK_MONOTONIC time it began. systemd
    /// 253+ requires that field for `Type=notify-reload` (it tells this reload apart from an older one); older
    /// versions and plain `Type=notify` ignore it. A later `.ready` ends the reload.
    case reloading(monotonicMicroseconds: UInt64, status: String?)
    /// Shutdown began (pool64 drains): `STOPPING=1`.
    case stopping(status: String?)
    /// A free-form line for `systemctl status`: `STATUS=`.
    case status(String)
    /// A liveness ping for `WatchdogSec=`: `WATCHDOG=1`, optionally with a fresh status line.
    case watchdog(status: String?)
}

/// The datagram for one notification: `KEY=value` assignments separated by newlines (sd_notify(3)). Pure, so the
/// exact bytes are testable without a socket.
public struct NotifyMessage: Sendable, Equatable {
    /// One `KEY=value` line.
    public struct Assignment: Sendable, Equatable {
        /// The variable name, e.g. `READY`.
        public var key: String
        /// The value; never contains a newline or NUL (see `NotifyMessage.sanitized`).
        public var value: String
    }

    /// The assignments in the order they are sent.
    public private(set) var assignments: [Assignment]

    /// The longest `STATUS=` value sent, in UTF-8 bytes. systemd reads a notification into a buffer of
    /// `NOTIFY_BUFFER_MAX` (PIPE_BUF, 4,096 bytes) and drops a longer datagram entirely, so a long status must be cut
    /// rather than lose the `READY=1` beside it.
    public static let maxStatusBytes = 1_024

    /// The message for `notification`.
    public init(_ notification: ServiceNotification) {
        assignments = []
        switch notification {
        case .ready(let mainPID, let status):
            add("READY", "1")
            if let mainPID { add("MAINPID", String(mainPID)) }
            addStatus(status)
        case .reloading(let usec, let status):
            add("RELOADING", "1")
            add("MONOTONIC_USEC", String(usec))
            addStatus(status)
        case .stopping(let status):
            add("STOPPING", "1")
            addStatus(status)
        case .status(let status):
            addStatus(status)
        case .watchdog(let status):
            add("WATCHDOG", "1")
            addStatus(status)
        }
    }

    /// The datagram text: one assignment per line, no trailing newline (systemd splits on `\n` and ignores empty
    /// lines, so either form is accepted; sd_notify's callers send it without).
    public var text: String {
        assignments.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
    }

    /// The value of `key`, if the message carries it.
    public func value(of key: String) -> String? {
        assignments.first { $0.key == key }?.value
    }

    private mutating func add(_ key: String, _ value: String) {
        assignments.append(Assignment(key: key, value: value))
    }

    private mutating func addStatus(_ status: String?) {
        guard let status else { return }
        add("STATUS", Self.sanitized(status, maxBytes: Self.maxStatusBytes))
    }

    /// `value` made safe for one assignment: a newline would start a new assignment (a status carrying an error text
    /// could otherwise inject `MAINPID=` or `READY=1`), and NUL ends the C string systemd parses, so both become
    /// spaces; the result is cut to `maxBytes` UTF-8 bytes on a character boundary.
    public static func sanitized(_ value: String, maxBytes: Int) -> String {
        var out = ""
        var bytes = 0
        for ch in value {
            let safe: Character = (ch == "\n" || ch == "\r" || ch == "\r\n" || ch == "\0") ? " " : ch
            let size = safe.utf8.count
            if bytes + size > maxBytes { break }
            out.append(safe)
            bytes += size
        }
        return out
    }
}
