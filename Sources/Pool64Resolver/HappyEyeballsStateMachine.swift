// RFC 8305 (Happy Eyeballs v2) connection racing, as a value-type state machine.
//
// swift-nio's HappyEyeballs.swift keeps its FSM inside a class because its callbacks mutate
// shared state from futures. pool64's dialer instead owns one machine per dial and feeds it
// events from a single thread, so a plain struct with `mutating` events works and is testable
// with a fake clock. Like NIO, attempts start in list order (the caller has already ordered
// and interleaved families, RFC 8305 §4), the next attempt starts after the "Connection
// Attempt Delay" (250 ms, RFC 8305 §5), and a failure starts the next attempt at once rather
// than waiting out the delay (RFC 8305 §5: "or until the previous attempt fails").
//
// Time is the caller's: every event that can start an attempt carries `now`, and deadlines
// are returned as actions, so no timer or clock lives in here.

/// A monotonic instant as plain nanoseconds, for callers that keep time as `UInt64`
/// (for example `ResolverClock`).
public struct NanosecondInstant: InstantProtocol, Hashable, Sendable {
    /// Nanoseconds since an arbitrary origin.
    public var nanoseconds: UInt64

    /// Wraps a nanosecond count.
    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    /// The instant `duration` later (negative durations go back, saturating at zero).
    public func advanced(by duration: Duration) -> NanosecondInstant {
        let (seconds, attoseconds) = duration.components
        let delta = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if delta >= 0 { return NanosecondInstant(nanoseconds: nanoseconds &+ UInt64(delta)) }
        let back = UInt64(-delta)
        return NanosecondInstant(nanoseconds: nanoseconds > back ? nanoseconds - back : 0)
    }

    /// The duration from `self` to `other`.
    public func duration(to other: NanosecondInstant) -> Duration {
        .nanoseconds(Int64(bitPattern: other.nanoseconds &- nanoseconds))
    }

    /// Orders instants.
    public static func < (lhs: NanosecondInstant, rhs: NanosecondInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }
}

/// Races connection attempts to an ordered candidate list (RFC 8305).
///
/// The caller maps each returned action to I/O: start a connect, (re)arm its single timer,
/// cancel attempts, report the winner or the collected failures.
public struct HappyEyeballsStateMachine<Instant: InstantProtocol, Failure: Sendable>: Sendable
where Instant.Duration == Duration, Instant: Sendable {
    /// One failed attempt.
    public struct AttemptFailure: Sendable {
        /// The candidate's index in the list.
        public var index: Int
        /// Why it failed.
        public var error: Failure
    }

    /// What the caller must do next, in order.
    public enum Action: Sendable {
        /// Start connecting to candidate `index`.
        case startAttempt(index: Int)
        /// Arm the timer (replacing any armed one) to fire `timerFired` at `deadline`.
        case scheduleTimer(deadline: Instant)
        /// Disarm the timer; no further attempt is due.
        case cancelTimer
        /// Abandon these in-flight attempts and close their sockets.
        case cancelAttempts([Int])
        /// Candidate `index` connected first: use it.
        case succeeded(index: Int)
        /// Every candidate failed (an empty list for an empty candidate list).
        case failed([AttemptFailure])
    }

    private struct Racing: Sendable {
        /// The next candidate not yet started.
        var nextIndex: Int
        /// Started attempts still connecting, in start order.
        var inFlight: [Int]
        var failures: [AttemptFailure]
        /// When the next attempt is due, if one is.
        var timerDeadline: Instant?
    }

    private enum State: Sendable {
        /// `start` not called yet.
        case idle
        /// Attempts are running or due.
        case racing(Racing)
        /// An attempt won; late events only clean up.
        case succeeded(winner: Int)
        /// Every attempt failed.
        case failed
    }

    /// The number of candidates.
    public let candidateCount: Int
    /// The delay between starting attempts (RFC 8305 §5 recommends 250 ms).
    public let attemptDelay: Duration
    private var state: State = .idle

    /// Creates a machine for `candidateCount` candidates, tried in index order.
    public init(candidateCount: Int, attemptDelay: Duration = .milliseconds(250)) {
        self.candidateCount = candidateCount
        self.attemptDelay = attemptDelay
    }

    /// The winning index once one connected.
    public var winner: Int? {
        switch state {
        case .succeeded(let winner): return winner
        case .idle, .racing, .failed: return nil
        }
    }

    /// True once the race is decided, either way.
    public var isFinished: Bool {
        switch state {
        case .succeeded, .failed: return true
        case .idle, .racing: return false
        }
    }

    /// Begins the race: the first candidate starts now.
    public mutating func start(now: Instant) -> [Action] {
        switch state {
        case .idle:
            guard candidateCount > 0 else {
                state = .failed
                return [.failed([])]
            }
            var racing = Racing(nextIndex: 0, inFlight: [], failures: [], timerDeadline: nil)
            let actions = startNext(&racing, now: now)
            state = .racing(racing)
            return actions
        case .racing, .succeeded, .failed:
            return []
        }
    }

    /// The armed timer fired: start the next candidate if its time has come.
    public mutating func timerFired(now: Instant) -> [Action] {
        switch state {
        case .racing(var racing):
            // A timer the caller failed to disarm, or one that fires early, starts nothing.
            guard let deadline = racing.timerDeadline, now >= deadline else { return [] }
            racing.timerDeadline = nil
            let actions = startNext(&racing, now: now)
            state = .racing(racing)
            return actions
        case .idle, .succeeded, .failed:
            return []
        }
    }

    /// Candidate `index` connected.
    public mutating func attemptSucceeded(index: Int) -> [Action] {
        switch state {
        case .racing(let racing):
            guard racing.inFlight.contains(index) else { return [] }
            state = .succeeded(winner: index)
            var actions: [Action] = []
            let losers = racing.inFlight.filter { $0 != index }
            if !losers.isEmpty { actions.append(.cancelAttempts(losers)) }
            if racing.timerDeadline != nil { actions.append(.cancelTimer) }
            actions.append(.succeeded(index: index))
            return actions
        case .succeeded(let winner):
            // A connect that completed before its cancellation landed: close it too.
            return index == winner ? [] : [.cancelAttempts([index])]
        case .idle, .failed:
            return []
        }
    }

    /// Candidate `index` failed with `error`; the next candidate starts at once.
    public mutating func attemptFailed(index: Int, error: Failure, now: Instant) -> [Action] {
        switch state {
        case .racing(var racing):
            guard let position = racing.inFlight.firstIndex(of: index) else { return [] }
            racing.inFlight.remove(at: position)
            racing.failures.append(AttemptFailure(index: index, error: error))
            if racing.nextIndex < candidateCount {
                let actions = startNext(&racing, now: now)
                state = .racing(racing)
                return actions
            }
            guard racing.inFlight.isEmpty else {
                state = .racing(racing)
                return []
            }
            state = .failed
            var actions: [Action] = []
            if racing.timerDeadline != nil { actions.append(.cancelTimer) }
            actions.append(.failed(racing.failures.sorted { $0.index < $1.index }))
            return actions
        case .idle, .succeeded, .failed:
            return []
        }
    }

    /// Starts `racing.nextIndex` and arms the timer for the one after, or disarms it.
    private func startNext(_ racing: inout Racing, now: Instant) -> [Action] {
        let index = racing.nextIndex
        racing.nextIndex += 1
        racing.inFlight.append(index)
        var actions: [Action] = [.startAttempt(index: index)]
        if racing.nextIndex < candidateCount {
            let deadline = now.advanced(by: attemptDelay)
            racing.timerDeadline = deadline
            actions.append(.scheduleTimer(deadline: deadline))
        } else if racing.timerDeadline != nil {
            racing.timerDeadline = nil
            actions.append(.cancelTimer)
        }
        return actions
    }
}

extension HappyEyeballsStateMachine.AttemptFailure: Equatable where Failure: Equatable {}
extension HappyEyeballsStateMachine.Action: Equatable where Failure: Equatable {}
