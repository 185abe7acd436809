/// Logger metadata keys of the admin server, kept in one place so log queries stay stable.
enum AdminLogMetadata {
    /// A listen address, as configured or as bound.
    static let address = "pool64.admin.address"
    /// The remote end of an admin connection.
    static let peer = "pool64.admin.peer"
    /// A description of the error behind a log line.
    static let error = "pool64.error"
}
