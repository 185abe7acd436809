import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Proves to the service manager that the process still works, and keeps `systemctl status` current.
///
/// Every `interval` it runs `probe`, which must hop through the loop that carries the clients (pool64's relay loop)
/// and return a status line from there. When the probe answers within `probeTimeout`, it sends `WATCHDOG=1` (if the
/// manager asked for a watchdog) and `STATUS=` (when the line changed). A wedged loop never answers, so the pings
/// stop and systemd restarts the service after `WatchdogSec=`; a ping from a timer alone would keep a hung proxy
/// alive forever.
///
/// It runs until cancelled and ignores graceful shutdown on purpose: pings continue while the proxy drains, so a
/// drain longer than `WatchdogSec=` is not mistaken for a hang. Put it before the proxy in the `ServiceGroup`
/// (which shuts services down in reverse order, each after the previous one ended), or the group waits for it.
public struct HeartbeatService: Service, CustomStringConvertible {
    /// The service's name in swift-service-lifecycle's logs.
    public var description: String { "HeartbeatService" }

    /// Status refreshes when systemd wants no watchdog pings: often enough for a person running `systemctl status`.
    public static let statusInterval: Duration = .seconds(10)

    let notifier: ServiceNotifier
    let interval: Duration
    let probeTimeout: Duration
    let probe: @Sendable () async throws -> String
    let logger: Logger

    /// A heartbeat for `notifier`: every watchdog interval (or `statusInterval` without a watchdog), with a probe
    /// timeout of one interval. Nil when the notifier sends nothing.
    public init?(notifier: ServiceNotifier, logger: Logger, probe: @escaping @Sendable () async throws -> String) {
        guard notifier.isEnabled else { return nil }
        let interval = notifier.watchdogInterval ?? Self.statusInterval
        self.init(notifier: notifier, interval: interval, probeTimeout: interval, logger: logger, probe: probe)
    }

    /// A heartbeat with explicit timing (tests).
    public init(
        notifier: ServiceNotifier, interval: Duration, probeTimeout: Duration, logger: Logger,
        probe: @escaping @Sendable () async throws -> String
    ) {
        self.notifier = notifier
        self.interval = interval
        self.probeTimeout = probeTimeout
        self.probe = probe
        self.logger = logger
    }

    /// Beats until cancelled. The first beat comes one interval after start, after `READY=1` (the group starts this
    /// service before the proxy binds): its status line then replaces the ready message's "listening on …".
    public func run() async throws {
        let watchdog = notifier.watchdogInterval != nil
        let pending = Probe(probe)
        var lastStatus: String?
        let clock = ContinuousClock()
        var next = clock.now + interval
        while true {
            do {
                try await Task.sleep(until: next, clock: clock)
            } catch {
                return
            }
            next = clock.now + interval
            switch await pending.answer(within: probeTimeout) {
            case .answered(let status):
                let changed = status != lastStatus ? status : nil
                if watchdog {
                    notifier.watchdog(status: changed)
                } else if let changed {
                    notifier.status(changed)
                }
                lastStatus = status
            case .failed(let error):
                // The loop answered, so it is alive; only the status could not be had.
                logger.debug("heartbeat probe failed", metadata: ["error": "\(error)"])
                if watchdog { notifier.watchdog() }
            case .timedOut, .stillPending:
                logger.warning(
                    "relay loop did not answer the heartbeat; withholding the watchdog ping",
                    metadata: ["timeout": "\(probeTimeout)"])
            }
        }
    }
}

/// The outcome of one heartbeat probe.
enum ProbeAnswer: Sendable, Equatable {
    /// The probe returned this status line.
    case answered(String)
    /// The probe threw (its loop ran, so this still counts as alive).
    case failed(String)
    /// No answer within the timeout.
    case timedOut
    /// The previous probe has still not answered, so no new one was started.
    case stillPending
}

/// Runs a probe with a timeout, at most one at a time. A probe stuck in a wedged loop cannot be cancelled (an
/// EventLoop task, once submitted, runs or never does), so instead of piling up one stuck probe per interval the
/// next beat finds the old one still pending and reports that.
final class Probe: Sendable {
    private let body: @Sendable () async throws -> String
    private let outstanding = NIOLockedValueBox(false)

    init(_ body: @escaping @Sendable () async throws -> String) { self.body = body }

    /// Starts the probe (unless one is still out) and waits up to `timeout` for it; cancellation ends the wait
    /// early (as `.timedOut`).
    func answer(within timeout: Duration) async -> ProbeAnswer {
        let started = outstanding.withLockedValue { busy -> Bool in
            if busy { return false }
            busy = true
            return true
        }
        guard started else { return .stillPending }
        let gate = AnswerGate()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ProbeAnswer, Never>) in
                gate.install(continuation)
                let timer = Task {
                    do {
                        try await Task.sleep(for: timeout)
                    } catch {
                        return
                    }
                    gate.resume(.timedOut)
                }
                Task { [body, outstanding] in
                    let answer: ProbeAnswer
                    do {
                        answer = .answered(try await body())
                    } catch {
                        answer = .failed("\(error)")
                    }
                    outstanding.withLockedValue { $0 = false }
                    gate.resume(answer)
                    timer.cancel()
                }
            }
        } onCancel: {
            gate.resume(.timedOut)
        }
    }
}

/// Hands the first of several racing answers (probe, timer, cancellation) to the waiting continuation, exactly once,
/// whether or not the continuation is installed yet.
final class AnswerGate: Sendable {
    private enum State: Sendable {
        case empty
        case waiting(CheckedContinuation<ProbeAnswer, Never>)
        case answered(ProbeAnswer)
        case done
    }

    private let state = NIOLockedValueBox(State.empty)

    /// Installs the continuation; resumes it at once when an answer came first.
    func install(_ continuation: CheckedContinuation<ProbeAnswer, Never>) {
        let early: ProbeAnswer? = state.withLockedValue { s in
            switch s {
            case .empty:
                s = .waiting(continuation)
                return nil
            case .answered(let a):
                s = .done
                return a
            case .waiting, .done:
                return nil
            }
        }
        if let early { continuation.resume(returning: early) }
    }

    /// Delivers `answer` unless another one already won.
    func resume(_ answer: ProbeAnswer) {
        let waiter: CheckedContinuation<ProbeAnswer, Never>? = state.withLockedValue { s in
            switch s {
            case .empty:
                s = .answered(answer)
                return nil
            case .waiting(let c):
                s = .done
                return c
            case .answered, .done:
                return nil
            }
        }
        waiter?.resume(returning: answer)
    }
}
