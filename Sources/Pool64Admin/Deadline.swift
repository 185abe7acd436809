import Foundation

/// Runs `operation` and returns its result, or nil when `timeout` passes first or the calling task is cancelled.
///
/// Unlike a task group, this does not wait for an operation that ignores cancellation: a hung provider call must
/// not hang the HTTP response that asked for it.
func withDeadline<Value: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async -> Value
) async -> Value? {
    let gate = ResumeOnce<Value?>()
    return await withTaskCancellationHandler {
        await withCheckedContinuation { continuation in
            gate.arm(continuation)
            let work = Task { gate.resume(with: await operation()) }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if gate.resume(with: nil) { work.cancel() }
            }
            gate.onResume { timer.cancel() }
        }
    } onCancel: {
        gate.resume(with: nil)
    }
}

/// Resumes a continuation exactly once, whichever of several racers gets there first.
private final class ResumeOnce<Value: Sendable>: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private enum State {
        case waiting
        case armed(CheckedContinuation<Value, Never>)
        /// Resumed before the continuation existed (cancellation can win that race); `arm` delivers the value.
        case resolvedEarly(Value)
        case done
    }

    private let lock = NSLock()
    private var state = State.waiting
    private var cleanups: [@Sendable () -> Void] = []

    func arm(_ continuation: CheckedContinuation<Value, Never>) {
        let early: Value? = self.lock.withLock {
            switch self.state {
            case .waiting:
                self.state = .armed(continuation)
                return nil
            case .resolvedEarly(let value):
                self.state = .done
                return value
            case .armed, .done:
                preconditionFailure("ResumeOnce armed twice")
            }
        }
        if let early { continuation.resume(returning: early) }
    }

    /// Registers work to run once resumed (immediately if already resumed).
    func onResume(_ cleanup: @escaping @Sendable () -> Void) {
        let runNow = self.lock.withLock {
            switch self.state {
            case .waiting, .armed:
                self.cleanups.append(cleanup)
                return false
            case .resolvedEarly, .done:
                return true
            }
        }
        if runNow { cleanup() }
    }

    /// Returns true if this call was the one that resumed.
    @discardableResult
    func resume(with value: Value) -> Bool {
        let outcome: (won: Bool, continuation: CheckedContinuation<Value, Never>?, cleanups: [@Sendable () -> Void]) =
            self.lock.withLock {
                let cleanups = self.cleanups
                switch self.state {
                case .waiting:
                    self.state = .resolvedEarly(value)
                    self.cleanups = []
                    return (true, nil, cleanups)
                case .armed(let continuation):
                    self.state = .done
                    self.cleanups = []
                    return (true, continuation, cleanups)
                case .resolvedEarly, .done:
                    return (false, nil, [])
                }
            }
        outcome.continuation?.resume(returning: value)
        for cleanup in outcome.cleanups { cleanup() }
        return outcome.won
    }
}
