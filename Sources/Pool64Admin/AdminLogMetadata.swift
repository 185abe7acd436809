/// Logger metadata keys of the admin server, kept in one place so log queries stay stable.
enum AdminLogMetadata {
    /// A listen address, as configured or as bound.
    static let address = "pool64.admin.address"
    /// The remote end of an admin connection.
    static let peer = "pool64.admin.peer"
    /// The maintenance command of a `POST /admin/…` request (`pause`, `resume`, `reconnect`).
    static let command = "pool64.admin.command"
    /// The database a command names; `*` for every database.
    static let database = "pool64.admin.database"
    /// How long a command took.
    static let elapsed = "pool64.admin.elapsed"
    /// A description of the error behind a log line.
    static let error = "pool64.error"
}
