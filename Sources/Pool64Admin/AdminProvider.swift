import Pool64Stats

/// What the admin server asks of the rest of pool64. The core implements it; tests supply fakes.
///
/// Each call may be slow or hang (an overloaded event loop, a database that does not answer); the admin server
/// bounds every call with a deadline, so implementations need not.
public protocol AdminProvider: Sendable {
    /// A point-in-time copy of every pool, resolver and process counter, rendered by `/stats` and `/metrics`.
    func stats() async -> StatsSnapshot
    /// Whether pool64 can serve queries now (`/readyz`): false while draining or while the database is unreachable.
    func readiness() async -> Readiness
    /// Whether the process is alive and its event loops answer (`/healthz`).
    func isAlive() async -> Bool
}
