import NIOCore

/// A parsed admin listen address: an IP literal and a port.
///
/// Accepted forms: `[::]:9090`, `[::1]:0`, `127.0.0.1:9090`, `0.0.0.0:9090`, `*:9090` and `:9090` (both meaning
/// `[::]`), and `localhost:9090` (127.0.0.1, as `/etc/hosts` maps it on our hosts). Host names are refused on
/// purpose: resolving them at bind time would block and could pick a family the operator did not mean.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The IP literal without brackets, e.g. `::` or `127.0.0.1`.
    public var host: String
    /// The TCP port; 0 asks the kernel for a free one.
    public var port: Int

    /// Creates an address from parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `text`, throwing ``AdminServerError/Code/invalidAddress`` naming it when malformed.
    public init(parsing text: String) throws {
        let invalid = { (why: String) in AdminServerError(code: .invalidAddress, address: text, detail: why) }
        let trimmed = text.trimmingWhitespace()
        let hostPart: Substring
        let portPart: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { throw invalid("missing ']'") }
            hostPart = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("expected ':PORT' after ']'") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { throw invalid("expected HOST:PORT") }
            hostPart = trimmed[..<colon]
            portPart = trimmed[trimmed.index(after: colon)...]
            // An unbracketed IPv6 literal is ambiguous about where the port starts (RFC 3986 §3.2.2).
            guard !hostPart.contains(":") else { throw invalid("IPv6 addresses need brackets, e.g. [::1]:9090") }
        }
        guard let port = Int(portPart), (0...65535).contains(port) else { throw invalid("port must be 0-65535") }
        var host = String(hostPart)
        switch host {
        case "", "*": host = "::"
        case "localhost": host = "127.0.0.1"
        default: break
        }
        guard (try? SocketAddress(ipAddress: host, port: port)) != nil else {
            throw invalid("host must be an IP literal")
        }
        self.host = host
        self.port = port
    }

    /// Whether the host is an IPv6 literal.
    public var isIPv6: Bool { self.host.contains(":") }

    /// Whether this is the IPv6 wildcard `[::]`, which pool64 binds dual-stack.
    public var isIPv6Wildcard: Bool {
        // inet_ntop renders every spelling of the unspecified address (`::`, `0::0`, …) as `::`.
        self.isIPv6 && (try? SocketAddress(ipAddress: self.host, port: 0))?.ipAddress == "::"
    }

    /// The socket address to bind.
    public func socketAddress() throws -> SocketAddress {
        try SocketAddress(ipAddress: self.host, port: self.port)
    }

    /// `[::1]:9090` or `127.0.0.1:9090`.
    public var description: String {
        self.isIPv6 ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// Renders a bound socket address the way listen addresses are written, e.g. `[::]:9090`.
    public static func render(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ListenAddress(host: ip, port: port).description
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        var view = self[...]
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return view
    }
}
