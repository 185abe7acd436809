/// A listen address: an IP literal and a port. Parsed once here for both the PostgreSQL listener (`--listen`) and
/// the HTTP admin listener (`--admin-listen`), so both accept the same spellings.
///
/// Accepted forms: `[::]:6432`, `[fd64:1::2]:6432`, `127.0.0.1:6432`, `0.0.0.0:6432`, `*:6432` and `:6432` (both
/// meaning `[::]`, bound dual-stack), and `localhost:6432` (127.0.0.1, as `/etc/hosts` maps it on our hosts). Host
/// names are refused on purpose: resolving them at bind time would block and could pick a family the operator did
/// not mean.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The IP literal without brackets, e.g. `::` or `127.0.0.1`.
    public var host: String
    /// The TCP port; 0 asks the kernel for a free one.
    public var port: Int

    /// Why a listen address was refused.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The text as given.
        public var text: String
        /// What is wrong with it, e.g. `port must be 0-65535`.
        public var reason: String
        public var description: String { "invalid listen address \(text): \(reason)" }
    }

    /// Creates an address from parts (not validated).
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `text` (surrounding whitespace ignored).
    public init(parsing text: String) throws(ParseError) {
        func invalid(_ why: String) -> ParseError { ParseError(text: text, reason: why) }
        var trimmed = Substring(text)
        while let first = trimmed.first, first.isWhitespace { trimmed = trimmed.dropFirst() }
        while let last = trimmed.last, last.isWhitespace { trimmed = trimmed.dropLast() }
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
            guard !hostPart.contains(":") else { throw invalid("IPv6 addresses need brackets, e.g. [::1]:6432") }
        }
        guard let port = Int(portPart), (0...65535).contains(port) else { throw invalid("port must be 0-65535") }
        var host = String(hostPart)
        switch host {
        case "", "*": host = "::"
        case "localhost": host = "127.0.0.1"
        default: break
        }
        guard IPv4Address(host) != nil || (!host.hasPrefix("[") && IPv6Address(host) != nil) else {
            throw invalid("host must be an IP literal")
        }
        self.host = host
        self.port = port
    }

    /// Whether the host is an IPv6 literal.
    public var isIPv6: Bool { host.contains(":") }

    /// Whether this is the IPv6 wildcard (`[::]` however spelled), which pool64 binds dual-stack.
    public var isIPv6Wildcard: Bool { isIPv6 && IPv6Address(host)?.isUnspecified == true }

    /// `[::1]:6432` or `127.0.0.1:6432`.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
