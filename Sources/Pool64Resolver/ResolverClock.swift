#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A monotonic clock in nanoseconds, injected so cache expiry is testable without sleeping.
public struct ResolverClock: Sendable {
    /// Returns the current monotonic time in nanoseconds.
    public let now: @Sendable () -> UInt64

    /// Wraps a closure returning monotonic nanoseconds.
    public init(now: @escaping @Sendable () -> UInt64) {
        self.now = now
    }

    /// `CLOCK_MONOTONIC`.
    public static let system = ResolverClock(now: { POSIXSocket.monotonicNanoseconds() })
}

/// A value behind a mutex; `@unchecked Sendable` because every access goes through the lock.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
