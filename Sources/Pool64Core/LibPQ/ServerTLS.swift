import NIOCore

/// TLS on server connections: libpq negotiates it; relaying through libpq's OpenSSL session needs the
/// Pool64ServerTLS handler. Until that is wired in, pool64 asks libpq for plain connections unless the URL says
/// otherwise, and refuses to relay a TLS session it cannot read.
enum ServerTLS {
    static let supported = false
    /// Used when the database URL names no `sslmode`.
    static let defaultSSLMode = "disable"

    static func install(on channel: Channel, pq: LibPQConnection) throws {}
}
