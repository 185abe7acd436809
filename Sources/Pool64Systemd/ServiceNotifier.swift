#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Tells the service manager (systemd, for `Type=notify` units) what pool64 is doing: ready, reloading, stopping,
/// a status line, watchdog pings. Without `NOTIFY_SOCKET` every call does nothing, so callers need not ask.
///
/// Sending never fails the caller: the manager may be gone or its queue full, and a lost notification must not stop
/// a proxy that is serving. Failures are logged at debug.
public final class ServiceNotifier: Sendable {
    private let socket: NotifySocket?
    private let logger: Logger
    private let pid: Int32
    private let monotonicMicroseconds: @Sendable () -> UInt64

    /// The interval between watchdog pings (half of `WATCHDOG_USEC`); nil when the manager wants none of this process.
    public let watchdogInterval: Duration?

    /// Whether notifications go anywhere.
    public var isEnabled: Bool { socket != nil }

    /// A notifier that sends nothing (pool64 outside systemd, and tests).
    public static func disabled(logger: Logger) -> ServiceNotifier {
        ServiceNotifier(environment: NotifyEnvironment(environment: [:], pid: 0), logger: logger)
    }

    /// A notifier for this process, from its environment.
    ///
    /// `NOTIFY_SOCKET` and `WATCHDOG_*` are left in the environment (sd_notify's `unset_environment` is false):
    /// pool64 starts no children that could inherit them, and unsetenv(3) is not safe while other threads read the
    /// environment, which libpq does on every dial (`PGHOST`, `PGSSLMODE`, …) from pool64's dial threads. A reload
    /// reads only `POOL64_*` and `DATABASE_URL`, so the variables cannot leak into configuration either.
    public static func fromProcessEnvironment(logger: Logger) -> ServiceNotifier {
        var env: [String: String] = [:]
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            if let value = getenv(key) { env[key] = String(cString: value) }
        }
        return ServiceNotifier(environment: NotifyEnvironment(environment: env, pid: getpid()), logger: logger)
    }

    /// A notifier for `environment`. `monotonicMicroseconds` stamps `RELOADING=1`; tests inject it.
    public init(
        environment: NotifyEnvironment, logger: Logger, pid: Int32 = getpid(),
        monotonicMicroseconds: @escaping @Sendable () -> UInt64 = ServiceNotifier.monotonicNow
    ) {
        self.logger = logger
        self.pid = pid
        self.monotonicMicroseconds = monotonicMicroseconds
        for problem in environment.problems {
            // An operator set these (or a unit file did): worth a warning, and pool64 runs on without the feature.
            logger.warning("ignoring service-manager variable", metadata: ["problem": "\(problem)"])
        }
        var socket: NotifySocket?
        if let address = environment.socket {
            do {
                socket = try NotifySocket(address: address)
            } catch {
                logger.debug("cannot open the notification socket", metadata: ["error": "\(error)"])
            }
        }
        self.socket = socket
        watchdogInterval = socket == nil ? nil : environment.watchdogInterval
        if let address = environment.socket, socket != nil {
            logger.debug(
                "service manager notifications on",
                metadata: [
                    "notify_socket": "\(address)",
                    "watchdog_interval": "\(watchdogInterval.map { "\($0)" } ?? "off")",
                ])
        }
    }

    /// `READY=1` with `MAINPID`: startup or a reload is done.
    public func ready(status: String? = nil) {
        send(.ready(mainPID: pid, status: status))
    }

    /// `RELOADING=1` with the current `MONOTONIC_USEC`; follow with `ready` when the reload is done or rejected.
    public func reloading(status: String? = nil) {
        send(.reloading(monotonicMicroseconds: monotonicMicroseconds(), status: status))
    }

    /// `STOPPING=1`: the drain began.
    public func stopping(status: String? = nil) {
        send(.stopping(status: status))
    }

    /// `STATUS=`: a line for `systemctl status`.
    public func status(_ status: String) {
        send(.status(status))
    }

    /// `WATCHDOG=1`: the caller has seen the process's loops answer.
    public func watchdog(status: String? = nil) {
        send(.watchdog(status: status))
    }

    /// Sends `notification`; returns whether the datagram left (false when disabled or on a send error).
    @discardableResult
    public func send(_ notification: ServiceNotification) -> Bool {
        guard let socket else { return false }
        let message = NotifyMessage(notification)
        do {
            try socket.send(message.text)
            logger.trace("notified service manager", metadata: ["message": "\(message.text)"])
            return true
        } catch {
            logger.debug(
                "service manager notification not sent", metadata: ["message": "\(message.text)", "error": "\(error)"])
            return false
        }
    }

    /// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
    @Sendable public static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
    }
}
