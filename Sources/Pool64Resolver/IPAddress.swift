/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address.
    case v4(IPv4Address)
    /// An IPv6 address (possibly IPv4-mapped; see `unmapped`).
    case v6(IPv6Address)

    /// Parses an IPv4 dotted quad or IPv6 text (brackets allowed); nil for anything else,
    /// including host names.
    public init?(_ text: some StringProtocol) {
        if let ipv4 = IPv4Address(text) {
            self = .v4(ipv4)
        } else if let ipv6 = IPv6Address(text) {
            self = .v6(ipv6)
        } else {
            return nil
        }
    }

    /// The address with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) turned into plain IPv4,
    /// so a dual-stack listener can show IPv4 peers as `a.b.c.d`.
    public var unmapped: IPAddress {
        switch self {
        case .v4:
            return self
        case .v6(let ipv6):
            return ipv6.mappedIPv4.map(IPAddress.v4) ?? self
        }
    }

    /// True for an IPv4 address.
    public var isIPv4: Bool {
        switch self {
        case .v4: return true
        case .v6: return false
        }
    }

    /// Canonical text: dotted quad, or RFC 5952 IPv6 text without brackets.
    public var description: String {
        switch self {
        case .v4(let ipv4): return ipv4.description
        case .v6(let ipv6): return ipv6.description
        }
    }

    /// Text fit to put before `:port` (IPv6 in brackets).
    public var bracketedDescription: String {
        switch self {
        case .v4(let ipv4): return ipv4.description
        case .v6(let ipv6): return "[\(ipv6)]"
        }
    }
}
