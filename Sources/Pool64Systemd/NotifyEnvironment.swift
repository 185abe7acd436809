/// The address of the service manager's notification socket, from `NOTIFY_SOCKET`.
public enum NotifySocketAddress: Sendable, Equatable {
    /// A socket file (`NOTIFY_SOCKET=/run/systemd/notify`).
    case path(String)
    /// A Linux abstract-namespace socket (`NOTIFY_SOCKET=@name`): the name without the `@`, which becomes a leading
    /// NUL byte in `sun_path`.
    case abstract(String)

    /// The size of `sockaddr_un.sun_path` on Linux.
    public static let sunPathCapacity = 108

    /// The bytes of `sun_path` and how many of them the address length covers. A path carries its terminating NUL
    /// (it must fit, as for bind(2)); an abstract name is exactly the NUL plus the name, since every byte of an
    /// abstract name is significant (unix(7)).
    public var sunPath: [UInt8] {
        switch self {
        case .path(let p): return Array(p.utf8) + [0]
        case .abstract(let name): return [0] + Array(name.utf8)
        }
    }

    /// Parses `NOTIFY_SOCKET`. Nil for an empty value; throws for one pool64 cannot use (a relative path, an address
    /// too long for `sun_path`, or systemd's `vsock:` form, which VMs use to notify their host and pool64 does not
    /// speak).
    public init?(environmentValue value: String) throws(NotifyConfigurationError) {
        guard !value.isEmpty else { return nil }
        if value.hasPrefix("@") {
            self = .abstract(String(value.dropFirst()))
        } else if value.hasPrefix("/") {
            self = .path(value)
        } else {
            throw NotifyConfigurationError(
                variable: "NOTIFY_SOCKET", value: value, reason: "not an absolute path or @abstract name")
        }
        guard sunPath.count <= Self.sunPathCapacity else {
            throw NotifyConfigurationError(variable: "NOTIFY_SOCKET", value: value, reason: "longer than sun_path")
        }
    }
}

/// A notification variable pool64 could not use; logged once at startup, never fatal.
public struct NotifyConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The environment variable, e.g. `WATCHDOG_USEC`.
    public var variable: String
    /// Its value as found.
    public var value: String
    /// Why it was not used.
    public var reason: String

    /// The error as one line.
    public var description: String { "\(variable)=\(value): \(reason)" }
}

/// What the service manager asked for, read from the environment systemd sets for `Type=notify` services: the
/// socket (`NOTIFY_SOCKET`) and the watchdog (`WATCHDOG_USEC`, `WATCHDOG_PID`), as sd_notify(3) and
/// sd_watchdog_enabled(3) read them.
public struct NotifyEnvironment: Sendable, Equatable {
    /// Where to send notifications; nil when pool64 runs outside a notify service (then nothing is sent).
    public var socket: NotifySocketAddress?
    /// `WATCHDOG_USEC`: the manager restarts the service when no `WATCHDOG=1` arrives within it. Nil when no watchdog
    /// is wanted of this process.
    public var watchdogTimeout: Duration?
    /// Problems found; the caller logs them. A problem disables only the feature it concerns.
    public var problems: [NotifyConfigurationError]

    /// A ping every half timeout, as sd_watchdog_enabled(3) recommends: one late ping is not yet a restart.
    public var watchdogInterval: Duration? { watchdogTimeout.map { $0 / 2 } }

    /// Reads `environment` for the process `pid` (`getpid()`).
    public init(environment: [String: String], pid: Int32) {
        problems = []
        socket = nil
        watchdogTimeout = nil
        if let value = environment["NOTIFY_SOCKET"] {
            do throws(NotifyConfigurationError) {
                socket = try NotifySocketAddress(environmentValue: value)
            } catch {
                problems.append(error)
            }
        }
        guard let usecText = environment["WATCHDOG_USEC"], !usecText.isEmpty else { return }
        guard let usec = UInt64(usecText), usec > 0, usec <= UInt64(Int64.max) / 1_000 else {
            problems.append(
                .init(variable: "WATCHDOG_USEC", value: usecText, reason: "not a positive number of microseconds"))
            return
        }
        // systemd passes WATCHDOG_PID so a forked child that inherits the environment does not believe the
        // watchdog is its own; a value for another process (or one that does not parse) means "not you".
        if let pidText = environment["WATCHDOG_PID"], !pidText.isEmpty {
            guard let watchdogPID = Int32(pidText), watchdogPID > 0 else {
                problems.append(.init(variable: "WATCHDOG_PID", value: pidText, reason: "not a process id"))
                return
            }
            guard watchdogPID == pid else { return }
        }
        // Pings need somewhere to go.
        guard socket != nil else { return }
        watchdogTimeout = .microseconds(Int64(usec))
    }
}
