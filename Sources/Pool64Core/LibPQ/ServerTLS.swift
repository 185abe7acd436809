import NIOCore
import Pool64ServerTLS

/// TLS on server connections: libpq negotiates it (sslmode, sslrootcert, SNI, verify-full); the relay then reads
/// and writes through libpq's own OpenSSL session via `LibPQTLSHandler`'s memory BIOs (DESIGN decision 4).
enum ServerTLS {
    /// Used when the database URL names no `sslmode`: libpq's own default.
    static let defaultSSLMode = "prefer"

    /// Puts the TLS handler first in a server channel's pipeline when libpq's connection uses TLS.
    static func install(on channel: Channel, pq: LibPQConnection) throws {
        guard pq.usesTLS else { return }
        try channel.pipeline.syncOperations.addHandler(LibPQTLSHandler(connection: pq.conn), position: .first)
    }
}
