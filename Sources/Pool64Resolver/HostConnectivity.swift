#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether this host can originate IPv4 and IPv6 connections at all.
public struct HostConnectivity: Hashable, Sendable, CustomStringConvertible {
    /// A route to global IPv4 exists.
    public var hasIPv4: Bool
    /// A route to global IPv6 exists.
    public var hasIPv6: Bool

    /// Creates a value (tests and configuration overrides).
    public init(hasIPv4: Bool, hasIPv6: Bool) {
        self.hasIPv4 = hasIPv4
        self.hasIPv6 = hasIPv6
    }

    /// Asks the kernel's routing table by `connect(2)`ing an unsent UDP socket to a probe
    /// address of each family. A UDP connect only selects a route and a source address; no
    /// packet leaves the host. The default probes are documentation addresses (RFC 5737,
    /// RFC 3849), which are routed like any global address by a default route. A connect that
    /// picks a loopback or unspecified source counts as no connectivity.
    public static func probe(
        ipv4Target: IPv4Address = IPv4Address(198, 51, 100, 1),
        ipv6Target: IPv6Address = IPv6Address("2001:db8::1")!
    ) -> HostConnectivity {
        HostConnectivity(hasIPv4: routes(to: .v4(ipv4Target)), hasIPv6: routes(to: .v6(ipv6Target)))
    }

    static func routes(to target: IPAddress) -> Bool {
        guard case .success(let fd) = POSIXSocket.connected(
            to: POSIXSocketAddress(target, port: 9), type: POSIXSocket.datagram)
        else { return false }
        defer { close(fd) }
        switch POSIXSocket.localAddress(fd) {
        case .v4(let source)?: return !source.isLoopback && source.value != 0
        case .v6(let source)?: return !source.isLoopback && !source.isUnspecified
        case nil: return false
        }
    }

    /// `ipv4=yes ipv6=no` style text for logs.
    public var description: String {
        "ipv4=\(hasIPv4 ? "yes" : "no") ipv6=\(hasIPv6 ? "yes" : "no")"
    }
}
