import NIOCore
import Pool64Resolver

// The syntax is shared with the PostgreSQL listener (Pool64Resolver.ListenAddress); what is admin-specific is the
// error the admin server reports and the NIO socket address it binds.
extension ListenAddress {
    /// Parses an admin listen address, throwing ``AdminServerError/Code/invalidAddress`` naming it when malformed.
    static func admin(_ text: String) throws(AdminServerError) -> ListenAddress {
        do throws(ListenAddress.ParseError) {
            return try ListenAddress(parsing: text)
        } catch {
            throw AdminServerError(code: .invalidAddress, address: text, detail: error.reason)
        }
    }

    /// The socket address to bind.
    func socketAddress() throws -> SocketAddress {
        try SocketAddress(ipAddress: self.host, port: self.port)
    }

    /// Renders a bound socket address the way listen addresses are written, e.g. `[::]:9090`.
    static func render(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ListenAddress(host: ip, port: port).description
    }
}
