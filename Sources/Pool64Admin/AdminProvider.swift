import Pool64Stats

/// What the admin server asks of the rest of pool64. The core implements it; tests supply fakes.
///
/// Each call may be slow or hang (an overloaded event loop, a database that does not answer); the admin server
/// bounds every call with a deadline, so implementations need not.
public protocol AdminProvider: Sendable {
    /// A point-in-time copy of every pool, resolver and process counter, rendered by `/metrics`.
    func stats() async -> StatsSnapshot
    /// The stats together with every client and server connection (`SHOW CLIENTS` / `SHOW SERVERS`), taken at once
    /// so the counts and the lists agree; `/stats`, `/stats/clients` and `/stats/servers` render pages of it.
    func consoleSnapshot() async -> ConsoleSnapshot
    /// Whether pool64 can serve queries now (`/readyz`): false while draining or while the database is unreachable.
    func readiness() async -> Readiness
    /// Whether the process is alive and its event loops answer (`/healthz`).
    func isAlive() async -> Bool
    /// Runs a maintenance command on one database's pools (or all when `database` is nil), as the admin console's
    /// `PAUSE` / `RESUME` / `RECONNECT` do. Returns when the command has taken effect (for ``AdminControl/pause``:
    /// when no server connection is left); throws ``AdminControlError`` when it cannot run.
    func control(_ action: AdminControl, database: String?) async throws
}

/// A maintenance command the admin HTTP port accepts (`POST /admin/<action>`).
public enum AdminControl: String, Sendable, CaseIterable {
    /// Wait for every server connection to be released, close them; clients queue until ``resume``.
    case pause
    /// End a pause: queued clients get server connections again.
    case resume
    /// Close server connections as they become free, so new ones use the settings in force now.
    case reconnect
}

/// A maintenance command that could not run (already paused, no such database…), with the SQLSTATE and wording the
/// admin console gives for it.
public struct AdminControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public var sqlstate: String
    public var message: String

    public init(sqlstate: String, message: String) {
        self.sqlstate = sqlstate
        self.message = message
    }

    public var description: String { "\(self.sqlstate): \(self.message)" }
}
